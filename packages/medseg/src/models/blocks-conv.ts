/**
 * Convolution and normalisation blocks shared by the architecture zoo, each
 * for 2D and 3D (picked from `dims`). Kernel sizes and strides are per
 * spatial axis ([z, y, x] or [y, x]) as the plan gives them.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';

const { nn } = torch;

export type Dims = 2 | 3;
type Unary = torch.nn.UnaryModule;

export const prod = (a: number[]): number => a.reduce((x, y) => x * y, 1);

/** 'same' padding for odd kernels (k // 2 per axis), as nnU-Net. */
export const samePadding = (kernel: number[]): number[] => kernel.map((k) => Math.floor(k / 2));

export function conv(
  dims: Dims,
  inC: number,
  outC: number,
  kernel: number | number[],
  o: { stride?: number | number[]; padding?: number | number[]; bias?: boolean; groups?: number } = {},
) {
  const k = Array.isArray(kernel) ? kernel : new Array(dims).fill(kernel);
  const opts = { stride: o.stride ?? 1, padding: o.padding ?? samePadding(k), bias: o.bias ?? true, groups: o.groups ?? 1 };
  return dims === 2 ? new nn.Conv2d(inC, outC, k, opts) : new nn.Conv3d(inC, outC, k, opts);
}

export function convTranspose(dims: Dims, inC: number, outC: number, kernel: number[], stride: number[]) {
  return dims === 2 ? new nn.ConvTranspose2d(inC, outC, kernel, { stride }) : new nn.ConvTranspose3d(inC, outC, kernel, { stride });
}

/**
 * Normalisation by name. Instance norm is affine as in nnU-Net; group norm uses
 * up to 8 groups (the largest divisor of the channel count not above 8).
 */
export function makeNorm(kind: NetworkConfig['norm'], channels: number): Unary {
  if (kind === 'instance') return new nn.InstanceNorm(channels, { affine: true, eps: 1e-5 });
  if (kind === 'batch') return new nn.BatchNorm(channels);
  if (kind === 'group') {
    let g = Math.min(8, channels);
    while (channels % g) g--;
    return new nn.GroupNorm(g, channels);
  }
  throw new Error(`unknown norm '${String(kind)}': use 'instance', 'batch' or 'group'`);
}

/** Conv -> norm -> LeakyReLU(0.01), nnU-Net's unit; optional dropout after the conv. */
export class ConvNormAct extends nn.UnaryModule {
  conv: Unary;
  dropout: Unary | null;
  norm: Unary;
  act: Unary | null;
  constructor(dims: Dims, inC: number, outC: number, kernel: number[], o: { stride?: number[]; norm: NetworkConfig['norm']; dropout?: number; act?: boolean }) {
    super();
    // No conv bias: the norm right after it would cancel it (and leave it untrainable).
    this.conv = this.module('conv', conv(dims, inC, outC, kernel, { stride: o.stride ?? 1, bias: false }));
    this.dropout = o.dropout ? this.module('dropout', new nn.Dropout(o.dropout)) : null;
    this.norm = this.module('norm', makeNorm(o.norm, outC));
    this.act = o.act === false ? null : this.module('nonlin', new nn.LeakyReLU(0.01));
  }
  forward(x: Tensor): Tensor {
    let h = this.conv.forward(x);
    if (this.dropout) h = this.dropout.forward(h);
    h = this.norm.forward(h);
    return this.act ? this.act.forward(h) : h;
  }
}

/** n ConvNormAct units; the first one carries the stride (nnU-Net's StackedConvBlocks). */
export class StackedConvs extends nn.UnaryModule {
  convs: torch.nn.Sequential;
  constructor(dims: Dims, inC: number, outC: number, kernel: number[], o: { stride?: number[]; norm: NetworkConfig['norm']; n?: number; dropout?: number }) {
    super();
    const n = o.n ?? 2;
    const units: ConvNormAct[] = [];
    for (let i = 0; i < n; i++) {
      units.push(new ConvNormAct(dims, i === 0 ? inC : outC, outC, kernel, { stride: i === 0 ? o.stride : undefined, norm: o.norm, dropout: o.dropout }));
    }
    this.convs = this.module('convs', new nn.Sequential(...units));
  }
  forward(x: Tensor): Tensor {
    return this.convs.forward(x);
  }
}
