/** Swin Transformer pieces: window partitioning, window attention, the (shifted) Swin block and patch merging. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { prod } from './blocks-conv.ts';
import { Mlp } from './blocks-transformer.ts';

const { nn, F } = torch;

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
    const qkv = this.qkv
      .forward(x)
      .reshape([b, t, 3, h, c / h])
      .permute([2, 0, 3, 1, 4]);
    const [q, k, v] = qkv.unbind(0) as [Tensor, Tensor, Tensor];
    let scores = q.mul(1 / Math.sqrt(c / h)).matmul(k.transpose(-2, -1)); // [b, h, t, t]
    const bias = this.biasTable.indexSelect(0, this.relIndex).reshape([t, t, h]).permute([2, 0, 1]);
    scores = scores.add(bias.unsqueeze(0));
    if (mask) {
      const nW = mask.size(0);
      scores = scores
        .reshape([b / nW, nW, h, t, t])
        .add(mask.unsqueeze(1).unsqueeze(0))
        .reshape([b, h, t, t]);
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
    if (shifted)
      h = h.roll(
        s.map((v) => -v),
        axes,
      );
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
    const merged = x
      .reshape([...shape, c])
      .permute(perm)
      .reshape([n!, ...rest.map((s, i) => s / this.stride[i]!), prod(this.stride) * c]);
    return this.reduce.forward(this.norm.forward(merged));
  }
}
