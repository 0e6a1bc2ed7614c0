/** Residual (ResUNet) and recurrent residual (R2U-Net) blocks. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { conv, ConvNormAct, makeNorm, type Dims } from './blocks-conv.ts';

const { nn } = torch;
type Unary = torch.nn.UnaryModule;

/**
 * Residual block (He et al.; ResUNet): conv-norm-act, conv-norm, plus a
 * shortcut (1x1 strided conv + norm when the shape changes), then act.
 */
export class ResidualBlock extends nn.UnaryModule {
  c1: ConvNormAct;
  c2: ConvNormAct;
  skip: Unary | null;
  act = this.module('nonlin', new nn.LeakyReLU(0.01));
  constructor(dims: Dims, inC: number, outC: number, kernel: number[], o: { stride?: number[]; norm: NetworkConfig['norm']; dropout?: number }) {
    super();
    const stride = o.stride ?? new Array(dims).fill(1);
    this.c1 = this.module('conv1', new ConvNormAct(dims, inC, outC, kernel, { stride, norm: o.norm, dropout: o.dropout }));
    this.c2 = this.module('conv2', new ConvNormAct(dims, outC, outC, kernel, { norm: o.norm, act: false }));
    const changes = inC !== outC || stride.some((s) => s !== 1);
    this.skip = changes
      ? this.module(
          'skip',
          new nn.Sequential(
            conv(
              dims,
              inC,
              outC,
              stride.map(() => 1),
              { stride, padding: 0, bias: false },
            ),
            makeNorm(o.norm, outC),
          ),
        )
      : null;
  }
  forward(x: Tensor): Tensor {
    const h = this.c2.forward(this.c1.forward(x));
    const s = this.skip ? this.skip.forward(x) : x;
    return this.act.forward(h.add(s));
  }
}

/**
 * Recurrent conv unit of R2U-Net (Alom et al.): the same conv-norm-act applied
 * t+1 times, each time to input + previous state: h0 = f(x), h_k = f(x + h_{k-1}).
 */
export class RecurrentConv extends nn.UnaryModule {
  unit: ConvNormAct;
  constructor(
    dims: Dims,
    channels: number,
    kernel: number[],
    readonly t: number,
    norm: NetworkConfig['norm'],
  ) {
    super();
    this.unit = this.module('unit', new ConvNormAct(dims, channels, channels, kernel, { norm }));
  }
  forward(x: Tensor): Tensor {
    let h = this.unit.forward(x);
    for (let i = 0; i < this.t; i++) h = this.unit.forward(x.add(h));
    return h;
  }
}

/**
 * Recurrent residual (R2) block: a (strided) 1x1 projection to outC, two
 * recurrent conv units, and the projection added back.
 */
export class R2Block extends nn.UnaryModule {
  proj: Unary;
  rec: torch.nn.Sequential;
  constructor(dims: Dims, inC: number, outC: number, kernel: number[], o: { stride?: number[]; norm: NetworkConfig['norm']; t?: number }) {
    super();
    const stride = o.stride ?? new Array(dims).fill(1);
    // Strided projection does the downsampling, so the recurrence runs at the stage's resolution.
    this.proj = this.module(
      'proj',
      conv(
        dims,
        inC,
        outC,
        stride.map((s) => (s > 1 ? s : 1)),
        { stride, padding: 0 },
      ),
    );
    const t = o.t ?? 2;
    this.rec = this.module('rec', new nn.Sequential(new RecurrentConv(dims, outC, kernel, t, o.norm), new RecurrentConv(dims, outC, kernel, t, o.norm)));
  }
  forward(x: Tensor): Tensor {
    const p = this.proj.forward(x);
    return p.add(this.rec.forward(p));
  }
}
