/** Network-level pieces: decoder upsampling, weight initialisation, and config/input checks. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { conv, convTranspose, type Dims } from './blocks-conv.ts';

const { nn, F } = torch;
type Unary = torch.nn.UnaryModule;

/**
 * Decoder upsampling by `stride` per axis: a transposed conv (kernel = stride,
 * nnU-Net) or, for runtimes without 3D transposed convs (WebGPU), a linear
 * resize to the target size followed by a 1x1 conv.
 */
export class Upsampler extends nn.Module {
  op: Unary;
  constructor(
    dims: Dims,
    inC: number,
    outC: number,
    readonly stride: number[],
    readonly mode: NetworkConfig['upsample'] = 'transpose',
  ) {
    super();
    this.op = this.module('op', mode === 'interpolate' ? conv(dims, inC, outC, 1, { padding: 0 }) : convTranspose(dims, inC, outC, stride, stride));
  }
  /** `size`: the spatial size to reach (the skip's), required to be input * stride. */
  forward(x: Tensor, size?: number[]): Tensor {
    const target = size ?? x.shape.slice(2).map((s, i) => s * this.stride[i]!);
    if (this.mode === 'interpolate') {
      const same = x.shape.slice(2).join(',') === target.join(',');
      return this.op.forward(same ? x : F.interpolate(x, { size: target, mode: 'linear' }));
    }
    return this.op.forward(x);
  }
}

/** nnU-Net's InitWeights_He(1e-2): Kaiming normal (a = 0.01) on convs, zero biases. */
export function initHe(net: torch.nn.Module, a = 0.01): void {
  for (const [, m] of net.namedModules()) {
    if (m instanceof nn.ConvNd || m instanceof nn.ConvTransposeNd) {
      nn.init.kaimingNormal_(m.weight, { a, nonlinearity: 'leaky_relu' });
      if (m.bias) nn.init.zeros_(m.bias);
    }
  }
}

/** Cumulative stride per axis after each stage. */
export function cumulativeStrides(strides: number[][]): number[][] {
  const out: number[][] = [];
  let acc = strides[0]!.map(() => 1);
  for (const s of strides) {
    acc = acc.map((a, i) => a * s[i]!);
    out.push(acc);
  }
  return out;
}

/** Throws a clear error unless the network config is consistent. */
export function validateConfig(c: NetworkConfig): void {
  const n = c.features.length;
  const where = `network config (${c.architecture})`;
  if (c.dims !== 2 && c.dims !== 3) throw new Error(`${where}: dims must be 2 or 3, got ${c.dims}`);
  if (n < 2) throw new Error(`${where}: need at least 2 stages, got features [${c.features.join(', ')}]`);
  if (c.kernelSizes.length !== n || c.strides.length !== n) {
    throw new Error(`${where}: features (${n}), kernelSizes (${c.kernelSizes.length}) and strides (${c.strides.length}) must have one entry per stage`);
  }
  for (const [name, list] of [
    ['kernelSizes', c.kernelSizes],
    ['strides', c.strides],
  ] as const) {
    for (const e of list) {
      if (e.length !== c.dims || e.some((v) => !Number.isInteger(v) || v < 1))
        throw new Error(`${where}: ${name} entries must be ${c.dims} positive integers, got [${e.join(', ')}]`);
    }
  }
  if (c.kernelSizes.some((k) => k.some((v) => v % 2 === 0))) throw new Error(`${where}: kernel sizes must be odd`);
  if (c.inChannels < 1 || c.numClasses < 1) throw new Error(`${where}: inChannels and numClasses must be >= 1`);
  if (c.features.some((f) => !Number.isInteger(f) || f < 1)) throw new Error(`${where}: features must be positive integers`);
  if (c.dropout !== undefined && !(c.dropout >= 0 && c.dropout < 1)) throw new Error(`${where}: dropout must be in [0, 1)`);
}

/** Throws unless the input's spatial size is divisible by the network's total stride. */
export function checkInput(c: NetworkConfig, x: Tensor): void {
  if (x.ndim !== c.dims + 2) throw new Error(`${c.architecture}: expected input [N, C, ${c.dims === 3 ? 'D, H, W' : 'H, W'}], got [${x.shape.join(', ')}]`);
  if (x.size(1) !== c.inChannels) throw new Error(`${c.architecture}: expected ${c.inChannels} input channels, got ${x.size(1)}`);
  const total = cumulativeStrides(c.strides).at(-1)!;
  const sp = x.shape.slice(2);
  if (sp.some((s, i) => s % total[i]!)) {
    throw new Error(
      `${c.architecture}: input size [${sp.join(', ')}] must be divisible by the total stride [${total.join(', ')}]; pad the patch or change the plan`,
    );
  }
}
