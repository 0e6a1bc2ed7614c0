/**
 * Every differentiable op's backward checked numerically in float64: autograd
 * (libtorch's, reached through the binding's generic op call) against central
 * differences (testing/gradcheck.ts). Inputs are small and fixed; points near
 * kinks (relu, max, abs) are avoided by drawing continuous random values.
 */
import { test } from 'node:test';
import * as torch from './index.ts';
import type { Tensor } from './index.ts';
import { gradcheck } from './testing/gradcheck.ts';
import { distinctT, randintT, randnT, uniformT } from './testing/inputs.ts';

const F = torch.F;
let seed = 1000;
/** A float64 input that requires grad. */
const g = (shape: number[], scale = 1) => randnT(shape, seed++, { dtype: 'float64', scale, requiresGrad: true });
/** A float64 constant. */
const cst = (shape: number[]) => randnT(shape, seed++, { dtype: 'float64' });
const pos = (shape: number[]) => uniformT(shape, seed++, 0.5, 2, { dtype: 'float64', requiresGrad: true });

function check(name: string, fn: (...xs: Tensor[]) => Tensor | Tensor[], inputs: () => Tensor[], o: Parameters<typeof gradcheck>[2] = {}): void {
  test(`gradcheck: ${name}`, () => {
    torch.tidy(() => {
      gradcheck(fn, inputs(), o);
    });
  });
}

// ---- shape, indexing, padding ----------------------------------------------------------
check(
  'reshape / permute / transpose / flatten',
  (x) => [x.reshape([4, 6]), x.permute([2, 0, 1]), x.transpose(0, 2), x.flatten(1)],
  () => [g([2, 3, 4])],
);
check(
  'slice / narrow / select / flip / roll',
  (x) => [x.slice(1, 1, 3), x.slice(2, 0, 4, 2), x.narrow(2, 1, 2), x.select(0, 1), x.flip([1, 2]), x.roll([1], [2])],
  () => [g([2, 3, 4])],
);
check(
  'expand / repeat / squeeze / unsqueeze',
  (x) => [x.expand([2, 3, 4]), x.repeat([2, 1, 2]), x.unsqueeze(0).squeeze(0)],
  () => [g([3, 1])],
);
check(
  'indexSelect / gather / index / maskedFill',
  (x, idx, gi) => [x.indexSelect(1, idx), x.gather(1, gi), x.index([idx]), x.maskedFill(x.gt(0), 0.5)],
  () => [g([3, 5]), randintT([4], seed++, 0, 3), randintT([3, 4], seed++, 0, 5)],
);
check(
  'scatter (src)',
  (x, src, gi) => x.scatter(1, gi, src),
  () => [g([3, 5]), g([3, 1]), randintT([3, 1], seed++, 0, 5)],
);
check(
  'cat / stack / split / chunk',
  (a, b) => [torch.cat([a, b], 1), torch.stack([a, a.mul(b.slice(1, 0, 2))], 0), ...torch.cat([a, b], 1).split(2, 1), ...b.chunk(2, 1)],
  () => [g([2, 2]), g([2, 3])],
);
check(
  'pad constant / reflect / replicate / circular (1D, 2D, 3D)',
  (x1, x2, x3) => [
    F.pad(x1, [2, 1], 'constant', 0.5),
    F.pad(x1, [2, 3], 'reflect'),
    F.pad(x2, [1, 2, 2, 1], 'reflect'),
    F.pad(x3, [1, 1, 1, 0, 0, 1], 'reflect'),
    F.pad(x1, [2, 3], 'replicate'),
    F.pad(x2, [1, 2, 2, 1], 'replicate'),
    F.pad(x3, [1, 0, 0, 2, 1, 1], 'replicate'),
    F.pad(x2, [1, 1, 2, 1], 'circular'),
  ],
  () => [g([1, 2, 5]), g([1, 2, 4, 4]), g([1, 1, 3, 3, 3])],
);

// ---- elementwise -----------------------------------------------------------------------------
check(
  'add / sub / mul / div with broadcasting and scalars',
  (a, b) => [a.add(b, 2), a.sub(b), a.mul(b), a.div(b.abs().add(0.5)), a.add(1.5).mul(-2).div(3), a.rsub(2)],
  () => [g([2, 3, 4]), g([3, 1])],
);
check(
  'pow / exp / log / log1p / sqrt / rsqrt / reciprocal / square',
  (p, e) => [p.pow(2.5), p.pow(e), e.exp(), p.log(), p.log1p(), p.sqrt(), p.rsqrt(), p.reciprocal(), e.square()],
  () => [pos([2, 3]), g([2, 3])],
);
check(
  'sin / cos / tanh / sigmoid / erf / abs / neg',
  (x) => [x.sin(), x.cos(), x.tanh(), x.sigmoid(), x.erf(), x.abs(), x.neg()],
  () => [g([3, 4])],
);
check(
  'clamp / maximum / minimum / where / lerp',
  (a, b, m) => [a.clamp(-0.5, 0.5), a.clamp(0.1), a.maximum(b), a.minimum(b), torch.where(m, a, b), a.lerp(b, 0.3)],
  () => [g([3, 4]), g([3, 4]), uniformT([3, 4], seed++).gt(0.5)],
);

// ---- reductions ---------------------------------------------------------------------------------
check(
  'sum / mean / prod / cumsum',
  (x, p) => [x.sum(), x.sum([0, 2]), x.mean(1, true), p.prod(), p.prod(1), x.cumsum(2)],
  () => [g([2, 3, 4]), pos([2, 3])],
);
check(
  'max / min / amax / amin / maxWithIndices',
  (x) => [x.max(), x.min(), x.max(1), x.min([0, 2], true), x.maxWithIndices(2)[0]],
  () => [distinctT([2, 3, 4], seed++, { dtype: 'float64', requiresGrad: true })],
);
check(
  'var / std / logsumexp / norm',
  (x) => [x.var(), x.var(1), x.std([0, 2], true, 0), x.std(), x.logsumexp(1), x.logsumexp([0, 2], true), x.norm(), x.norm(3)],
  () => [g([2, 3, 4])],
);
check(
  'topk / sort values',
  (x) => [x.topk(2)[0], x.topk(2, 0, false)[0], x.sort(1, true)[0]],
  () => [distinctT([3, 5], seed++, { dtype: 'float64', requiresGrad: true })],
);

// ---- linear algebra ---------------------------------------------------------------------------------
check(
  'matmul / mm / bmm / einsum',
  (a, b, c, v) => [a.mm(b), c.matmul(b), a.matmul(v), c.bmm(b.unsqueeze(0).expand([2, 4, 5])), torch.einsum('bij,jk->bik', [c, b])],
  () => [g([3, 4]), g([4, 5]), g([2, 3, 4]), g([4])],
);

// ---- convolutions (input, weight and bias) ---------------------------------------------------------
check(
  'conv1d (stride, padding, dilation)',
  (x, w, b) => F.conv(x, w, b, { stride: 2, padding: 1, dilation: 2 }),
  () => [g([2, 2, 9]), g([3, 2, 3]), g([3])],
);
check(
  'conv2d (groups, padding)',
  (x, w, b) => F.conv(x, w, b, { padding: 1, groups: 2 }),
  () => [g([1, 4, 5, 4]), g([4, 2, 3, 3]), g([4])],
);
check(
  'conv3d',
  (x, w, b) => F.conv(x, w, b, { stride: [1, 2, 1], padding: 1 }),
  () => [g([1, 2, 3, 4, 3]), g([2, 2, 3, 3, 2]), g([2])],
);
check(
  'convTranspose1d',
  (x, w, b) => F.convTranspose(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
  () => [g([1, 2, 5]), g([2, 3, 3]), g([3])],
);
check(
  'convTranspose2d',
  (x, w, b) => F.convTranspose(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
  () => [g([1, 2, 3, 4]), g([2, 3, 3, 3]), g([3])],
);
check(
  'convTranspose3d',
  (x, w, b) => F.convTranspose(x, w, b, { stride: 2 }),
  () => [g([1, 2, 2, 3, 2]), g([2, 2, 2, 2, 2]), g([2])],
);

// ---- pooling ------------------------------------------------------------------------------------------
check(
  'maxPool 1D/2D/3D',
  (x1, x2, x3) => [F.maxPool(x1, 3, { stride: 2, padding: 1 }), F.maxPool(x2, 2), F.maxPool(x2, 3, { stride: 2, ceilMode: true }), F.maxPool(x3, 2)],
  () => [
    distinctT([1, 2, 8], seed++, { dtype: 'float64', requiresGrad: true }),
    distinctT([1, 2, 6, 7], seed++, { dtype: 'float64', requiresGrad: true }),
    distinctT([1, 1, 4, 4, 4], seed++, { dtype: 'float64', requiresGrad: true }),
  ],
);
check(
  'avgPool 1D/2D/3D',
  (x1, x2, x3) => [
    F.avgPool(x1, 3, { stride: 2, padding: 1, countIncludePad: false }),
    F.avgPool(x2, 2),
    F.avgPool(x2, 3, { stride: 2, padding: 1 }),
    F.avgPool(x3, 2, { ceilMode: true }),
  ],
  () => [g([1, 2, 8]), g([1, 2, 6, 7]), g([1, 1, 3, 4, 5])],
);
check(
  'adaptive avg / max pools 1D/2D/3D',
  (x1, x2, x3) => [
    F.adaptiveAvgPool(x1, 3),
    F.adaptiveMaxPool(x1, 3),
    F.adaptiveAvgPool(x2, [3, 2]),
    F.adaptiveMaxPool(x2, 2),
    F.adaptiveAvgPool(x3, 2),
    F.adaptiveMaxPool(x3, [1, 2, 2]),
  ],
  () => [
    distinctT([1, 2, 7], seed++, { dtype: 'float64', requiresGrad: true }),
    distinctT([1, 2, 5, 6], seed++, { dtype: 'float64', requiresGrad: true }),
    distinctT([1, 1, 3, 4, 5], seed++, { dtype: 'float64', requiresGrad: true }),
  ],
);

// ---- interpolation --------------------------------------------------------------------------------------
check(
  'interpolate nearest 1D/2D/3D',
  (x1, x2, x3) => [F.interpolate(x1, { size: [9] }), F.interpolate(x2, { scaleFactor: 2 }), F.interpolate(x3, { size: [3, 5, 2] })],
  () => [g([1, 2, 4]), g([1, 2, 3, 3]), g([1, 1, 2, 3, 3])],
);
for (const alignCorners of [false, true]) {
  check(
    `interpolate linear/bilinear/trilinear alignCorners=${alignCorners}`,
    (x1, x2, x3) => [
      F.interpolate(x1, { size: [9], mode: 'linear', alignCorners }),
      F.interpolate(x2, { size: [5, 7], mode: 'linear', alignCorners }),
      F.interpolate(x2, { scaleFactor: 1.5, mode: 'linear', alignCorners }),
      F.interpolate(x3, { size: [3, 4, 5], mode: 'linear', alignCorners }),
    ],
    () => [g([1, 2, 4]), g([1, 2, 3, 4]), g([1, 1, 2, 3, 3])],
  );
}

// ---- normalisation -----------------------------------------------------------------------------------------
check(
  'batchNorm training (batch statistics)',
  (x, w, b) => F.batchNorm(x, null, null, w, b, true),
  () => [g([3, 2, 3, 2]), g([2]), g([2])],
);
const bnMean = cst([2]).keep();
const bnVar = uniformT([2], 7, 0.5, 2, { dtype: 'float64' }).keep();
check(
  'batchNorm eval (running statistics)',
  (x, w, b) => F.batchNorm(x, bnMean, bnVar, w, b, false),
  () => [g([3, 2, 4]), g([2]), g([2])],
);
check(
  'instanceNorm 1D/2D/3D',
  (x1, x2, x3, w, b) => [F.instanceNorm(x1), F.instanceNorm(x2, w, b), F.instanceNorm(x3)],
  () => [g([2, 2, 5]), g([1, 2, 3, 4]), g([1, 2, 2, 2, 3]), g([2]), g([2])],
);
check(
  'groupNorm',
  (x, w, b) => F.groupNorm(x, 2, w, b),
  () => [g([2, 4, 3, 2]), g([4]), g([4])],
);
check(
  'layerNorm',
  (x, w, b) => [F.layerNorm(x, [3, 4], w, b), F.layerNorm(x, [4])],
  () => [g([2, 3, 4]), g([3, 4]), g([3, 4])],
);

// ---- activations, softmax, linear, embedding -------------------------------------------------------------------
check(
  'relu / leakyRelu / gelu / sigmoid / tanh',
  (x) => [F.relu(x), F.leakyRelu(x, 0.1), F.gelu(x), F.gelu(x, 'tanh'), F.sigmoid(x), F.tanh(x)],
  () => [g([3, 5])],
);
check(
  'softmax / logSoftmax',
  (x) => [F.softmax(x, 1), F.softmax(x, -1), F.logSoftmax(x, 0), F.logSoftmax(x, 2)],
  () => [g([2, 3, 4])],
);
check(
  'linear',
  (x, w, b) => [F.linear(x, w, b), F.linear(x, w)],
  () => [g([2, 3, 4]), g([5, 4]), g([5])],
);
check(
  'embedding (weight)',
  (w, idx) => F.embedding(idx, w),
  () => [g([6, 3]), randintT([2, 4], seed++, 0, 6)],
);

// Dropout reseeded before every evaluation: the same mask each time, so its
// gradient (mask / (1 - p)) can be checked numerically too.
check(
  'dropout / channelDropout (fixed mask)',
  (x) => {
    torch.manualSeed(11);
    return [F.dropout(x, 0.3, true), F.channelDropout(x, 0.5, true)];
  },
  () => [g([2, 6, 3, 3])],
);

// ---- attention -------------------------------------------------------------------------------------------------
check(
  'scaledDotProductAttention (q, k, v; additive and boolean masks; causal)',
  (q, k, v, am) => {
    const bm = torch.tensor([1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1], [3, 4], { dtype: 'bool' });
    return [
      F.scaledDotProductAttention(q, k, v).output,
      F.scaledDotProductAttention(q, k, v, { mask: am }).weights,
      F.scaledDotProductAttention(q, k, v, { mask: bm }).output,
      F.scaledDotProductAttention(q, k.slice(2, 0, 3), v.slice(2, 0, 3), { isCausal: true }).output,
    ];
  },
  () => [g([2, 2, 3, 4]), g([2, 2, 4, 4]), g([2, 2, 4, 4]), g([3, 4])],
);

// ---- losses ------------------------------------------------------------------------------------------------------
const targets = () => randintT([5], 77, 0, 4);
// Class weights are constants: libtorch defines no gradient for them.
const weightsC = () => uniformT([4], 79, 0.5, 2, { dtype: 'float64' });
check(
  'crossEntropy (mean, weights, ignoreIndex, label smoothing)',
  (x, w) => {
    const t = targets();
    const ti = t.maskedFill(torch.tensor([0, 1, 0, 0, 0], [5], { dtype: 'bool' }), -100);
    return [
      F.crossEntropy(x, t),
      F.crossEntropy(x, ti, { weight: w }),
      F.crossEntropy(x, t, { labelSmoothing: 0.1, reduction: 'sum' }),
      F.crossEntropy(x, ti, { weight: w, labelSmoothing: 0.2, reduction: 'none' }),
    ];
  },
  () => [g([5, 4]), weightsC()],
);
check(
  'crossEntropy spatial and soft targets (logits and target gradients)',
  (x, seg, p) => [F.crossEntropy(seg, randintT([1, 3, 2], 78, 0, 3)), F.crossEntropy(x, F.softmax(p, 1))],
  () => [g([5, 4]), g([1, 3, 3, 2]), g([5, 4])],
);
check(
  'nllLoss',
  (x, w) => F.nllLoss(F.logSoftmax(x, 1), targets(), { weight: w }),
  () => [g([5, 4]), weightsC()],
);
check(
  'bceWithLogits (weight, posWeight, target)',
  (x, t, w, pw) => [F.bceWithLogits(x, t), F.bceWithLogits(x, t, { weight: w, posWeight: pw, reduction: 'sum' })],
  () => [
    g([3, 4]),
    uniformT([3, 4], seed++, 0.1, 0.9, { dtype: 'float64', requiresGrad: true }),
    // weight and posWeight: constants (libtorch defines no gradient for them)
    uniformT([3, 4], seed++, 0.5, 2, { dtype: 'float64' }),
    uniformT([4], seed++, 0.5, 2, { dtype: 'float64' }),
  ],
);
check(
  'mse / l1',
  (x, y) => [F.mseLoss(x, y), F.l1Loss(x, y, 'sum'), F.mseLoss(x, y, 'none')],
  () => [g([3, 4]), g([3, 4])],
);

// ---- grid sampling ----------------------------------------------------------------------------------------------------
for (const alignCorners of [false, true]) {
  check(
    `gridSample 2D bilinear (input and grid) alignCorners=${alignCorners}`,
    (x, grid) => [
      F.gridSample(x, grid, { alignCorners }),
      F.gridSample(x, grid, { alignCorners, paddingMode: 'border' }),
      F.gridSample(x, grid, { alignCorners, paddingMode: 'reflection' }),
    ],
    () => [g([1, 2, 4, 5]), uniformT([1, 3, 4, 2], seed++, -1.1, 1.1, { dtype: 'float64', requiresGrad: true })],
  );
}
check(
  'gridSample 2D bicubic and nearest',
  (x, grid) => [F.gridSample(x, grid, { mode: 'bicubic' }), F.gridSample(x, grid.detach(), { mode: 'nearest' })],
  () => [g([1, 2, 4, 5]), uniformT([1, 3, 4, 2], seed++, -0.9, 0.9, { dtype: 'float64', requiresGrad: true })],
);
check(
  'gridSample 3D bilinear (input and grid)',
  (x, grid) => F.gridSample(x, grid, { alignCorners: false }),
  () => [g([1, 2, 3, 4, 3]), uniformT([1, 2, 3, 2, 3], seed++, -1, 1, { dtype: 'float64', requiresGrad: true })],
);
check(
  'affineGrid 2D/3D (theta)',
  (t2, t3) => [F.affineGrid(t2, [1, 1, 3, 4], false), F.affineGrid(t2, [1, 1, 3, 4], true), F.affineGrid(t3, [1, 1, 2, 3, 2], false)],
  () => [g([1, 2, 3]), g([1, 3, 4])],
);
// theta keeps every sampling point off integer pixel positions, where bilinear
// sampling has kinks (a point exactly on one makes central differences lie).
check(
  'affineGrid then gridSample (theta gradient through the warp)',
  (x, theta) => F.gridSample(x, F.affineGrid(theta, [1, 2, 4, 4], false)),
  () => [g([1, 2, 5, 5]), torch.tensor([0.93, 0.11, 0.047, -0.087, 1.04, 0.023], [1, 2, 3], { dtype: 'float64', requiresGrad: true })],
);
