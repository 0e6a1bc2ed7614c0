/**
 * Building blocks shared by the architecture zoo, each for 2D and 3D (picked
 * from `dims`). Kernel sizes and strides are per spatial axis ([z, y, x] or
 * [y, x]) as the plan gives them.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';

const { nn, F } = torch;

export type Dims = 2 | 3;
type Unary = torch.nn.UnaryModule;

export const prod = (a: number[]): number => a.reduce((x, y) => x * y, 1);

/** 'same' padding for odd kernels (k // 2 per axis), as nnU-Net. */
export const samePadding = (kernel: number[]): number[] => kernel.map((k) => Math.floor(k / 2));

export function conv(dims: Dims, inC: number, outC: number, kernel: number | number[], o: { stride?: number | number[]; padding?: number | number[]; bias?: boolean; groups?: number } = {}) {
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
      ? this.module('skip', new nn.Sequential(conv(dims, inC, outC, stride.map(() => 1), { stride, padding: 0, bias: false }), makeNorm(o.norm, outC)))
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
  constructor(dims: Dims, channels: number, kernel: number[], readonly t: number, norm: NetworkConfig['norm']) {
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
    this.proj = this.module('proj', conv(dims, inC, outC, stride.map((s) => (s > 1 ? s : 1)), { stride, padding: 0 }));
    const t = o.t ?? 2;
    this.rec = this.module('rec', new nn.Sequential(new RecurrentConv(dims, outC, kernel, t, o.norm), new RecurrentConv(dims, outC, kernel, t, o.norm)));
  }
  forward(x: Tensor): Tensor {
    const p = this.proj.forward(x);
    return p.add(this.rec.forward(p));
  }
}

/**
 * Additive attention gate (Oktay et al., Attention U-Net): the gating signal g
 * (coarser decoder features) decides which skip positions pass:
 * alpha = sigmoid(psi(relu(W_x x + W_g up(g)))), output x * alpha. The gating
 * signal is resampled to the skip's grid, so any stride works.
 */
export class AttentionGate extends nn.Module {
  wx: Unary;
  wg: Unary;
  psi: Unary;
  norm: Unary;
  /** The last attention coefficients [N, 1, ...skip spatial]. */
  lastAlpha: Tensor | null = null;
  constructor(dims: Dims, skipC: number, gateC: number, interC: number, normKind: NetworkConfig['norm']) {
    super();
    this.wx = this.module('W_x', conv(dims, skipC, interC, 1, { padding: 0, bias: false }));
    this.wg = this.module('W_g', conv(dims, gateC, interC, 1, { padding: 0 }));
    this.psi = this.module('psi', conv(dims, interC, 1, 1, { padding: 0 }));
    this.norm = this.module('norm', makeNorm(normKind, skipC));
  }
  forward(x: Tensor, g: Tensor): Tensor {
    const size = x.shape.slice(2);
    let gg = this.wg.forward(g);
    if (gg.shape.slice(2).join(',') !== size.join(',')) gg = F.interpolate(gg, { size, mode: 'linear' });
    const alpha = F.sigmoid(this.psi.forward(F.relu(this.wx.forward(x).add(gg))));
    this.lastAlpha = alpha;
    return this.norm.forward(x.mul(alpha));
  }
}

/**
 * CBAM (Woo et al.): channel attention from a shared MLP over average- and
 * max-pooled features, then spatial attention from a conv over the channel
 * mean and max maps.
 */
export class CBAM extends nn.UnaryModule {
  fc1: Unary;
  fc2: Unary;
  spatial: Unary;
  lastSpatial: Tensor | null = null;
  lastChannel: Tensor | null = null;
  constructor(
    readonly dims: Dims,
    channels: number,
    reduction = 4,
    spatialKernel = 7,
  ) {
    super();
    // At least min(C, 8) hidden units: with very few, every ReLU unit can be dead
    // for a batch and the channel MLP stops learning.
    const hidden = Math.max(Math.min(channels, 8), Math.floor(channels / reduction));
    this.fc1 = this.module('fc1', conv(dims, channels, hidden, 1, { padding: 0 }));
    this.fc2 = this.module('fc2', conv(dims, hidden, channels, 1, { padding: 0 }));
    this.spatial = this.module('spatial', conv(dims, 2, 1, spatialKernel));
  }
  forward(x: Tensor): Tensor {
    const spatialAxes = x.shape.slice(2).map((_, i) => i + 2);
    const mlp = (t: Tensor) => this.fc2.forward(F.relu(this.fc1.forward(t)));
    const avg = x.mean(spatialAxes, true);
    const mx = x.max(spatialAxes, true);
    const ca = F.sigmoid(mlp(avg).add(mlp(mx)));
    const xc = x.mul(ca);
    const sa = F.sigmoid(this.spatial.forward(torch.cat([xc.mean(1, true), xc.max(1, true)], 1)));
    this.lastChannel = ca;
    this.lastSpatial = sa;
    return xc.mul(sa);
  }
}

/** Transformer MLP: Linear -> GELU -> dropout -> Linear -> dropout. */
export class Mlp extends nn.UnaryModule {
  fc1: torch.nn.Linear;
  fc2: torch.nn.Linear;
  drop: torch.nn.Dropout;
  constructor(dim: number, hidden: number, dropout = 0) {
    super();
    this.fc1 = this.module('fc1', new nn.Linear(dim, hidden));
    this.fc2 = this.module('fc2', new nn.Linear(hidden, dim));
    this.drop = this.module('drop', new nn.Dropout(dropout));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.fc2.forward(this.drop.forward(F.gelu(this.fc1.forward(x)))));
  }
}

/** Pre-norm ViT encoder block: x + MHA(LN(x)), then x + MLP(LN(x)). Tokens [N, L, E]. */
export class TransformerBlock extends nn.UnaryModule {
  norm1: torch.nn.LayerNorm;
  attn: torch.nn.MultiheadAttention;
  norm2: torch.nn.LayerNorm;
  mlp: Mlp;
  drop: torch.nn.Dropout;
  /** Head-averaged attention weights [N, L, L] of the last forward. */
  lastAttention: Tensor | null = null;
  constructor(dim: number, heads: number, o: { mlpRatio?: number; dropout?: number } = {}) {
    super();
    this.norm1 = this.module('norm1', new nn.LayerNorm(dim));
    this.attn = this.module('attn', multiheadAttention(dim, heads));
    this.norm2 = this.module('norm2', new nn.LayerNorm(dim));
    this.mlp = this.module('mlp', new Mlp(dim, Math.round(dim * (o.mlpRatio ?? 4)), o.dropout ?? 0));
    this.drop = this.module('drop', new nn.Dropout(o.dropout ?? 0));
  }
  forward(x: Tensor): Tensor {
    const h = this.norm1.forward(x);
    const { output, weights } = this.attn.forward(h, h, h);
    this.lastAttention = weights;
    const x1 = x.add(this.drop.forward(output));
    return x1.add(this.mlp.forward(this.norm2.forward(x1)));
  }
}

/**
 * nn.MultiheadAttention, built under noGrad: its constructor zeroes out_proj's
 * bias in place, which libtorch refuses on a leaf that requires grad.
 */
export function multiheadAttention(dim: number, heads: number, dropout = 0): torch.nn.MultiheadAttention {
  return torch.noGrad(() => new nn.MultiheadAttention(dim, heads, { dropout }));
}

/** Feature map [N, C, ...S] -> tokens [N, prod(S), C]. */
export const toTokens = (x: Tensor): Tensor => x.flatten(2).transpose(1, 2);
/** Tokens [N, L, C] -> feature map [N, C, ...spatial]. */
export const fromTokens = (t: Tensor, spatial: number[]): Tensor => t.transpose(1, 2).reshape([t.size(0), t.size(2), ...spatial]);

// ------------------------------------------------------------------ Swin

/** Splits [N, ...S, C] (S divisible by w) into windows [N * nW, prod(w), C]. */
export function windowPartition(x: Tensor, w: number[]): Tensor {
  const [n, ...rest] = x.shape;
  const c = rest.pop()!;
  const shape: number[] = [n!];
  rest.forEach((s, i) => shape.push(s / w[i]!, w[i]!));
  const v = x.reshape([...shape, c]);
  const d = rest.length;
  // [N, a0, w0, a1, w1, (a2, w2), C] -> [N, a0, a1, (a2), w0, w1, (w2), C]
  const perm = [0, ...Array.from({ length: d }, (_, i) => 1 + 2 * i), ...Array.from({ length: d }, (_, i) => 2 + 2 * i), 1 + 2 * d];
  return v.permute(perm).reshape([-1, prod(w), c]);
}

/** Inverse of windowPartition. */
export function windowReverse(win: Tensor, w: number[], n: number, spatial: number[]): Tensor {
  const c = win.size(-1);
  const d = spatial.length;
  const a = spatial.map((s, i) => s / w[i]!);
  const v = win.reshape([n, ...a, ...w, c]);
  const perm = [0];
  for (let i = 0; i < d; i++) perm.push(1 + i, 1 + d + i);
  perm.push(1 + 2 * d);
  return v.permute(perm).reshape([n, ...spatial, c]);
}

/** Relative position index table of a window: [prod(w), prod(w)] into the bias table. */
function relativePositionIndex(w: number[]): { index: number[]; tableSize: number } {
  const coords: number[][] = [];
  const total = prod(w);
  for (let i = 0; i < total; i++) {
    const c: number[] = [];
    let r = i;
    for (let a = w.length - 1; a >= 0; a--) {
      c.unshift(r % w[a]!);
      r = Math.floor(r / w[a]!);
    }
    coords.push(c);
  }
  const spans = w.map((x) => 2 * x - 1);
  const index: number[] = [];
  for (const p of coords) {
    for (const q of coords) {
      let idx = 0;
      for (let a = 0; a < w.length; a++) idx = idx * spans[a]! + (p[a]! - q[a]! + w[a]! - 1);
      index.push(idx);
    }
  }
  return { index, tableSize: prod(spans) };
}

/**
 * Window multi-head self-attention with a learned relative position bias
 * (Liu et al., Swin Transformer). Input windows [B, T, C]; an additive mask
 * [nW, T, T] (shifted windows) is broadcast over the batch.
 */
export class WindowAttention extends nn.Module {
  qkv: torch.nn.Linear;
  proj: torch.nn.Linear;
  biasTable: Tensor;
  relIndex: Tensor;
  lastAttention: Tensor | null = null;
  constructor(
    readonly dim: number,
    readonly window: number[],
    readonly heads: number,
  ) {
    super();
    if (dim % heads) throw new Error(`WindowAttention: dim ${dim} not divisible by ${heads} heads`);
    this.qkv = this.module('qkv', new nn.Linear(dim, 3 * dim));
    this.proj = this.module('proj', new nn.Linear(dim, dim));
    const { index, tableSize } = relativePositionIndex(window);
    this.biasTable = this.param('relative_position_bias_table', torch.zeros([tableSize, heads]));
    nn.init.truncNormal_(this.biasTable, 0.02);
    this.relIndex = this.buffer('relative_position_index', torch.tensor(index, [index.length], { dtype: 'int64' }));
  }
  forward(x: Tensor, mask: Tensor | null = null): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const h = this.heads;
    const qkv = this.qkv.forward(x).reshape([b, t, 3, h, c / h]).permute([2, 0, 3, 1, 4]);
    const [q, k, v] = qkv.unbind(0) as [Tensor, Tensor, Tensor];
    let scores = q.mul(1 / Math.sqrt(c / h)).matmul(k.transpose(-2, -1)); // [b, h, t, t]
    const bias = this.biasTable.indexSelect(0, this.relIndex).reshape([t, t, h]).permute([2, 0, 1]);
    scores = scores.add(bias.unsqueeze(0));
    if (mask) {
      const nW = mask.size(0);
      scores = scores.reshape([b / nW, nW, h, t, t]).add(mask.unsqueeze(1).unsqueeze(0)).reshape([b, h, t, t]);
    }
    const attn = F.softmax(scores, -1);
    this.lastAttention = attn;
    return this.proj.forward(attn.matmul(v).transpose(1, 2).reshape([b, t, c]));
  }
  /** Multiply-accumulates of the two attention matmuls (Q K^T and A V) for `windows` windows. */
  attentionMacs(windows: number): number {
    const t = prod(this.window);
    return 2 * windows * t * t * this.dim;
  }
}

/**
 * Swin block on a channels-last map [N, ...S, C]: (shifted) window attention
 * and an MLP, both pre-norm with residuals. Maps whose size is not a multiple
 * of the window are padded with zeros, and axes not larger than the window are
 * not shifted, as the Swin reference does.
 */
export class SwinBlock extends nn.Module {
  norm1: torch.nn.LayerNorm;
  attn: WindowAttention;
  norm2: torch.nn.LayerNorm;
  mlp: Mlp;
  private maskCache = new Map<string, Tensor>();
  constructor(
    dim: number,
    heads: number,
    readonly window: number[],
    readonly shift: boolean,
    dropout = 0,
  ) {
    super();
    this.norm1 = this.module('norm1', new nn.LayerNorm(dim));
    this.attn = this.module('attn', new WindowAttention(dim, window, heads));
    this.norm2 = this.module('norm2', new nn.LayerNorm(dim));
    this.mlp = this.module('mlp', new Mlp(dim, 4 * dim, dropout));
  }

  /** Additive mask [nW, T, T]: -100 between tokens from different regions of the shifted map. */
  private shiftMask(padded: number[], w: number[], s: number[]): Tensor {
    const key = `${padded}|${w}|${s}`;
    let m = this.maskCache.get(key);
    if (m && !m.disposed) return m;
    const d = padded.length;
    const total = prod(padded);
    const region = new Float32Array(total);
    const bounds = (size: number, wi: number, si: number) => [size - wi, size - si];
    for (let i = 0; i < total; i++) {
      let r = i;
      let id = 0;
      for (let a = d - 1, mul = 1; a >= 0; a--, mul *= 3) {
        const p = r % padded[a]!;
        r = Math.floor(r / padded[a]!);
        const [b1, b2] = bounds(padded[a]!, w[a]!, s[a]!);
        id += (s[a]! === 0 ? 0 : p < b1! ? 0 : p < b2! ? 1 : 2) * mul;
      }
      region[i] = id;
    }
    m = torch.tidy(() => {
      const img = torch.tensor(region, [1, ...padded, 1]);
      const win = windowPartition(img, w).squeeze(-1); // [nW, T]
      const diff = win.unsqueeze(1).sub(win.unsqueeze(2)).ne(0);
      return torch.zeros(diff.shape).maskedFill(diff, -100).keep();
    });
    this.maskCache.set(key, m);
    return m;
  }

  forward(x: Tensor): Tensor {
    const [n, ...rest] = x.shape;
    const spatial = rest.slice(0, -1);
    // Maps not a multiple of the window are padded (after norm1, as the Swin
    // reference does); an axis no larger than the window is not shifted.
    const w = this.window;
    const s = this.shift ? w.map((wi, i) => (spatial[i]! > wi ? Math.floor(wi / 2) : 0)) : w.map(() => 0);
    const padded = spatial.map((sz, i) => Math.ceil(sz / w[i]!) * w[i]!);
    let h = this.norm1.forward(x);
    const padAmount = padded.map((p, i) => p - spatial[i]!);
    if (padAmount.some((p) => p > 0)) {
      const pads: number[] = [0, 0];
      for (let a = padded.length - 1; a >= 0; a--) pads.push(0, padAmount[a]!);
      h = F.pad(h, pads);
    }
    const axes = spatial.map((_, i) => i + 1);
    const shifted = s.some((v) => v > 0);
    if (shifted) h = h.roll(s.map((v) => -v), axes);
    const win = windowPartition(h, w);
    const attn = this.attn.forward(win, shifted ? this.shiftMask(padded, w, s) : null);
    let out = windowReverse(attn, w, n!, padded);
    if (shifted) out = out.roll(s, axes);
    if (padAmount.some((p) => p > 0)) for (let a = 0; a < spatial.length; a++) out = out.narrow(a + 1, 0, spatial[a]!);
    const x1 = x.add(out);
    return x1.add(this.mlp.forward(this.norm2.forward(x1)));
  }

  override dispose(): void {
    for (const m of this.maskCache.values()) if (!m.disposed) m.dispose();
    this.maskCache.clear();
    super.dispose();
  }
}

/**
 * Patch merging (Swin): concatenates each 2x2(x2) neighbourhood (only along
 * axes with stride 2) and projects 2^k C -> C_out with LayerNorm first.
 * Channels-last [N, ...S, C] in and out.
 */
export class PatchMerging extends nn.Module {
  norm: torch.nn.LayerNorm;
  reduce: torch.nn.Linear;
  constructor(
    inC: number,
    outC: number,
    readonly stride: number[],
  ) {
    super();
    const k = prod(stride);
    this.norm = this.module('norm', new nn.LayerNorm(k * inC));
    this.reduce = this.module('reduction', new nn.Linear(k * inC, outC, false));
  }
  forward(x: Tensor): Tensor {
    const [n, ...rest] = x.shape;
    const c = rest.pop()!;
    const d = rest.length;
    const shape: number[] = [n!];
    rest.forEach((s, i) => {
      if (s % this.stride[i]!) throw new Error(`PatchMerging: size ${s} not divisible by stride ${this.stride[i]}`);
      shape.push(s / this.stride[i]!, this.stride[i]!);
    });
    const perm = [0, ...Array.from({ length: d }, (_, i) => 1 + 2 * i), ...Array.from({ length: d }, (_, i) => 2 + 2 * i), 1 + 2 * d];
    const merged = x.reshape([...shape, c]).permute(perm).reshape([n!, ...rest.map((s, i) => s / this.stride[i]!), prod(this.stride) * c]);
    return this.reduce.forward(this.norm.forward(merged));
  }
}

// ------------------------------------------------------------------ upsampling

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

// ------------------------------------------------------------------ init and checks

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
  for (const [name, list] of [['kernelSizes', c.kernelSizes], ['strides', c.strides]] as const) {
    for (const e of list) {
      if (e.length !== c.dims || e.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${where}: ${name} entries must be ${c.dims} positive integers, got [${e.join(', ')}]`);
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
    throw new Error(`${c.architecture}: input size [${sp.join(', ')}] must be divisible by the total stride [${total.join(', ')}]; pad the patch or change the plan`);
  }
}

// ------------------------------------------------------------------ transformer over a feature map

export interface TransformerStageOptions {
  depth: number;
  heads: number;
  /** Token width (default: the map's channels). */
  hidden?: number;
  dropout?: number;
  /**
   * 'learned': a learned position embedding over `grid` tokens (ViT/TransUNet),
   * resized linearly when the map has another size; 'conv': a depthwise conv
   * positional encoding (size-agnostic).
   */
  position: 'learned' | 'conv';
  grid?: number[];
  /** Add the stage's output to its input (keeps the CNN features; HybridNet). */
  residual?: boolean;
  /** Name prefix of the recorded attention maps, e.g. 'transformer' -> 'transformer.block0.attn'. */
  name: string;
}

/**
 * Transformer encoder blocks over the positions of a CNN feature map: 1x1
 * projection to tokens, position information, pre-norm blocks, final
 * LayerNorm, projection back to the map's channels.
 */
export class TransformerStage extends nn.UnaryModule {
  projIn: Unary;
  projOut: Unary;
  pos: Tensor | null = null;
  posConv: Unary | null = null;
  blocks: torch.nn.ModuleList<TransformerBlock>;
  norm: torch.nn.LayerNorm;
  constructor(
    readonly dims: Dims,
    channels: number,
    readonly o: TransformerStageOptions,
  ) {
    super();
    const hidden = o.hidden ?? channels;
    this.projIn = this.module('proj_in', conv(dims, channels, hidden, 1, { padding: 0 }));
    if (o.position === 'learned') {
      const grid = o.grid ?? new Array(dims).fill(4);
      this.pos = this.param('pos_embed', torch.zeros([1, hidden, ...grid]));
      nn.init.truncNormal_(this.pos, 0.02);
    } else {
      this.posConv = this.module('pos_conv', conv(dims, hidden, hidden, 3, { groups: hidden }));
    }
    this.blocks = this.module('blocks', new nn.ModuleList<TransformerBlock>());
    for (let i = 0; i < o.depth; i++) this.blocks.push(new TransformerBlock(hidden, o.heads, { dropout: o.dropout ?? 0 }));
    this.norm = this.module('norm', new nn.LayerNorm(hidden));
    this.projOut = this.module('proj_out', conv(dims, hidden, channels, 1, { padding: 0 }));
  }
  forward(x: Tensor): Tensor {
    const spatial = x.shape.slice(2);
    let h = this.projIn.forward(x);
    if (this.pos) {
      const same = this.pos.shape.slice(2).join(',') === spatial.join(',');
      h = h.add(same ? this.pos : F.interpolate(this.pos, { size: spatial, mode: 'linear' }));
    } else if (this.posConv) {
      h = h.add(this.posConv.forward(h));
    }
    let t = toTokens(h);
    for (const b of this.blocks) t = b.forward(t);
    const out = this.projOut.forward(fromTokens(this.norm.forward(t), spatial));
    return this.o.residual ? x.add(out) : out;
  }
  explain(): [string, Tensor | null][] {
    return this.blocks.items.map((b, i) => [`${this.o.name}.block${i}.attn`, b.lastAttention]);
  }
}

/** The largest head count <= preferred that divides dim. */
export function headsFor(dim: number, preferred: number): number {
  let h = Math.max(1, Math.min(preferred, dim));
  while (dim % h) h--;
  return h;
}

// ------------------------------------------------------------------ MAC counting

/**
 * Multiply-accumulates of one forward, counted by forward hooks on every
 * module (a module called several times, like a recurrent unit, counts each
 * time). Counted: convolutions (output elements x in/groups x kernel volume),
 * transposed convolutions (input elements x out/groups x kernel volume),
 * linear layers (output elements x in features), nn.MultiheadAttention's
 * input projections and its two attention matmuls (Q K^T and A V), and the
 * two matmuls of WindowAttention. Not counted: norms, activations, pooling,
 * resizing, elementwise ops (they are not MACs).
 */
export function countMacsOf(net: torch.nn.Module, run: () => void): number {
  let macs = 0;
  const removers: (() => void)[] = [];
  for (const [, m] of net.namedModules()) {
    if (m instanceof nn.ConvNd) {
      const k = prod(m.weight.shape.slice(2));
      removers.push(m.registerForwardHook((_m, _in, out) => (macs += (out as Tensor).numel * m.weight.size(1) * k)));
    } else if (m instanceof nn.ConvTransposeNd) {
      const k = prod(m.weight.shape.slice(2));
      removers.push(m.registerForwardHook((_m, inputs) => (macs += (inputs[0] as Tensor).numel * m.weight.size(1) * k)));
    } else if (m instanceof nn.Linear) {
      removers.push(m.registerForwardHook((_m, _in, out) => (macs += (out as Tensor).numel * m.inFeatures)));
    } else if (m instanceof nn.MultiheadAttention) {
      removers.push(
        m.registerForwardHook((_m, inputs) => {
          const q = inputs[0] as Tensor;
          const k = (inputs[1] as Tensor | undefined) ?? q;
          const [n, l, e] = q.shape as [number, number, number];
          const s = k.size(1);
          macs += n * l * e * e + 2 * n * s * e * e + 2 * n * l * s * e;
        }),
      );
    } else if (m instanceof WindowAttention) {
      removers.push(
        m.registerForwardHook((_m, inputs) => {
          const [b, t, c] = (inputs[0] as Tensor).shape as [number, number, number];
          macs += 2 * b * t * t * c;
        }),
      );
    }
  }
  try {
    run();
  } finally {
    for (const r of removers) r();
  }
  return macs;
}
