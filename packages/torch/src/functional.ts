/**
 * Functional neural-network ops (torch.nn.functional). Spatial ops pick the
 * 1D/2D/3D kernel from the input rank: [N, C, L], [N, C, H, W], [N, C, D, H, W].
 */
import { Tensor, call, callT } from './tensor.ts';

type IntOrList = number | number[];

function spatialDims(x: Tensor, what: string): 1 | 2 | 3 {
  const d = x.ndim - 2;
  if (d < 1 || d > 3) throw new Error(`${what}: expected a 3D, 4D or 5D input [N, C, ...spatial], got shape [${x.shape.join(', ')}]`);
  return d as 1 | 2 | 3;
}

export interface ConvOptions {
  stride?: IntOrList;
  padding?: IntOrList;
  dilation?: IntOrList;
  groups?: number;
}

export function conv(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions = {}): Tensor {
  const d = spatialDims(x, 'conv');
  return callT(`aten::conv${d}d`, [x, weight, bias, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1]);
}

export function convTranspose(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions & { outputPadding?: IntOrList } = {}): Tensor {
  const d = spatialDims(x, 'convTranspose');
  // libtorch 1.13 names the 1D op without the '.input' overload the 2D/3D ones carry.
  return callT(d === 1 ? 'aten::conv_transpose1d' : `aten::conv_transpose${d}d.input`, [
    x,
    weight,
    bias,
    o.stride ?? 1,
    o.padding ?? 0,
    o.outputPadding ?? 0,
    o.groups ?? 1,
    o.dilation ?? 1,
  ]);
}

export interface PoolOptions {
  stride?: IntOrList;
  padding?: IntOrList;
  ceilMode?: boolean;
}

export function maxPool(x: Tensor, kernel: IntOrList, o: PoolOptions & { dilation?: IntOrList } = {}): Tensor {
  const d = spatialDims(x, 'maxPool');
  return callT(`aten::max_pool${d}d`, [x, kernel, o.stride ?? kernel, o.padding ?? 0, o.dilation ?? 1, o.ceilMode ?? false]);
}

export function avgPool(x: Tensor, kernel: IntOrList, o: PoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  const d = spatialDims(x, 'avgPool');
  const args: unknown[] = [x, kernel, o.stride ?? kernel, o.padding ?? 0, o.ceilMode ?? false, o.countIncludePad ?? true];
  if (d > 1) args.push(null);
  return callT(`aten::avg_pool${d}d`, args);
}

export function adaptiveAvgPool(x: Tensor, outputSize: IntOrList): Tensor {
  const d = spatialDims(x, 'adaptiveAvgPool');
  return callT(`aten::adaptive_avg_pool${d}d`, [x, outputSize]);
}

export function adaptiveMaxPool(x: Tensor, outputSize: IntOrList): Tensor {
  const d = spatialDims(x, 'adaptiveMaxPool');
  const [values, indices] = call(`aten::adaptive_max_pool${d}d`, [x, outputSize]) as [Tensor, Tensor];
  indices.dispose();
  return values;
}

export type InterpolateMode = 'nearest' | 'linear';

/**
 * Resize by output size or scale factor. 'linear' means linear/bilinear/
 * trilinear by rank, as PyTorch's modes of those names.
 */
export function interpolate(x: Tensor, o: { size?: number[]; scaleFactor?: number | number[]; mode?: InterpolateMode; alignCorners?: boolean }): Tensor {
  const d = spatialDims(x, 'interpolate');
  const mode = o.mode ?? 'nearest';
  const size = o.size ?? null;
  const scales = o.scaleFactor === undefined ? null : Array.isArray(o.scaleFactor) ? o.scaleFactor : new Array(d).fill(o.scaleFactor);
  if (!size && !scales) throw new Error('interpolate: give size or scaleFactor');
  if (mode === 'nearest') return callT(`aten::upsample_nearest${d}d.vec`, [x, size, scales]);
  const name = d === 1 ? 'linear1d' : d === 2 ? 'bilinear2d' : 'trilinear3d';
  return callT(`aten::upsample_${name}.vec`, [x, size, o.alignCorners ?? false, scales]);
}

export interface NormOptions {
  eps?: number;
  momentum?: number;
}

/** Batch norm; in training it updates runningMean/runningVar in place. */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  training: boolean,
  o: NormOptions = {},
): Tensor {
  return callT('aten::batch_norm', [x, weight, bias, runningMean, runningVar, training, o.momentum ?? 0.1, o.eps ?? 1e-5, true]);
}

export function instanceNorm(
  x: Tensor,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  o: NormOptions & { runningMean?: Tensor | null; runningVar?: Tensor | null; useInputStats?: boolean } = {},
): Tensor {
  return callT('aten::instance_norm', [
    x,
    weight,
    bias,
    o.runningMean ?? null,
    o.runningVar ?? null,
    o.useInputStats ?? true,
    o.momentum ?? 0.1,
    o.eps ?? 1e-5,
    true,
  ]);
}

/**
 * libtorch 1.13's CPU group_norm and layer_norm reject a bf16 input with fp32
 * affine parameters (PyTorch under torch.autocast fails the same way): under
 * autocast a conv or linear hands them bf16 while the module's weights stay
 * fp32. Such a norm runs in fp32 on the input cast up (the next conv or linear
 * casts its output back to bf16), as the norms that need fp32 should.
 */
function normInput(x: Tensor, weight: Tensor | null, bias: Tensor | null): Tensor {
  const p = weight ?? bias;
  return p && x.dtype === 'bfloat16' && p.dtype === 'float32' ? x.float() : x;
}

export function groupNorm(x: Tensor, groups: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  return callT('aten::group_norm', [normInput(x, weight, bias), groups, weight, bias, eps, true]);
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  return callT('aten::layer_norm', [normInput(x, weight, bias), normalizedShape, weight, bias, eps, true]);
}

export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  return callT('aten::dropout', [x, p, training]);
}

/** Drops whole channels (Dropout2d/3d). */
export function channelDropout(x: Tensor, p: number, training: boolean): Tensor {
  return callT('aten::feature_dropout', [x, p, training]);
}

export function relu(x: Tensor): Tensor {
  return callT('aten::relu', [x]);
}

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return callT('aten::leaky_relu', [x, negativeSlope]);
}

export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return callT('aten::gelu', [x, approximate]);
}

export function sigmoid(x: Tensor): Tensor {
  return callT('aten::sigmoid', [x]);
}

export function tanh(x: Tensor): Tensor {
  return callT('aten::tanh', [x]);
}

export function softmax(x: Tensor, dim: number): Tensor {
  return callT('aten::softmax.int', [x, dim, null]);
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return callT('aten::log_softmax.int', [x, dim, null]);
}

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return callT('aten::linear', [x, weight, bias]);
}

export function embedding(indices: Tensor, weight: Tensor, paddingIdx = -1): Tensor {
  return callT('aten::embedding', [weight, indices, paddingIdx, false, false]);
}

/** PyTorch's pad: `pad` lists (before, after) pairs from the LAST dim backwards. */
export function pad(x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  return callT('aten::pad', [x, padding, mode, mode === 'constant' ? value : null]);
}

/**
 * softmax(Q K^T * scale + mask) V over the last two dims. Composed from
 * matmul and softmax because libtorch 1.13 has no public fused kernel; the
 * attention weights are returned too, for attention maps.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: { mask?: Tensor | null; dropoutP?: number; training?: boolean; scale?: number; isCausal?: boolean } = {},
): { output: Tensor; weights: Tensor } {
  const d = q.size(-1);
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const kt = k.transpose(-2, -1);
  const raw = q.matmul(kt);
  kt.dispose();
  let scores = raw.mul(scale);
  raw.dispose();
  if (o.isCausal) {
    const L = q.size(-2);
    const S = k.size(-2);
    const ones_ = callT('aten::ones', [[L, S], 11, null, null, null]);
    const causal = callT('aten::triu', [ones_, 1]);
    ones_.dispose();
    const masked = scores.maskedFill(causal, -Infinity);
    causal.dispose();
    scores.dispose();
    scores = masked;
  }
  if (o.mask) {
    const masked = o.mask.dtype === 'bool' ? scores.maskedFill(o.mask.logicalNot(), -Infinity) : scores.add(o.mask);
    scores.dispose();
    scores = masked;
  }
  let weights = softmax(scores, -1);
  scores.dispose();
  if (o.dropoutP && o.training) {
    const w = dropout(weights, o.dropoutP, true);
    weights.dispose();
    weights = w;
  }
  return { output: weights.matmul(v), weights };
}

export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION = { none: 0, mean: 1, sum: 2 } as const;

/** Cross-entropy on logits [N, C, ...] with int64 class targets [N, ...] or class probabilities. */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return callT('aten::cross_entropy_loss', [logits, target, o.weight ?? null, REDUCTION[o.reduction ?? 'mean'], o.ignoreIndex ?? -100, o.labelSmoothing ?? 0]);
}

export function nllLoss(logProbs: Tensor, target: Tensor, o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  return callT('aten::nll_loss_nd', [logProbs, target, o.weight ?? null, REDUCTION[o.reduction ?? 'mean'], o.ignoreIndex ?? -100]);
}

export function bceWithLogits(logits: Tensor, target: Tensor, o: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}): Tensor {
  return callT('aten::binary_cross_entropy_with_logits', [logits, target, o.weight ?? null, o.posWeight ?? null, REDUCTION[o.reduction ?? 'mean']]);
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return callT('aten::mse_loss', [input, target, REDUCTION[reduction]]);
}

export function l1Loss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return callT('aten::l1_loss', [input, target, REDUCTION[reduction]]);
}

const GRID_MODE = { bilinear: 0, nearest: 1, bicubic: 2 } as const;
const GRID_PADDING = { zeros: 0, border: 1, reflection: 2 } as const;

/**
 * Samples x at the normalized coordinates in grid ([-1, 1], last dim (x, y[, z])),
 * as torch.nn.functional.grid_sample: spatial augmentation and registration.
 */
export function gridSample(
  x: Tensor,
  grid: Tensor,
  o: { mode?: keyof typeof GRID_MODE; paddingMode?: keyof typeof GRID_PADDING; alignCorners?: boolean } = {},
): Tensor {
  return callT('aten::grid_sampler', [x, grid, GRID_MODE[o.mode ?? 'bilinear'], GRID_PADDING[o.paddingMode ?? 'zeros'], o.alignCorners ?? false]);
}

/** Sampling grid for a batch of affine matrices theta [N, 2, 3] or [N, 3, 4]. */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  return callT('aten::affine_grid_generator', [theta, size, alignCorners]);
}
