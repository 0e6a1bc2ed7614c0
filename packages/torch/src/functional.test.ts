/**
 * torch.nn.functional twins checked against PyTorch in 1D/2D/3D where they
 * exist: conv, transposed conv, pools, interpolation, norms, activations,
 * linear, embedding, attention, losses, grid sampling. Dropout is checked by
 * its identities (p = 0, eval) and by statistics for p > 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from './index.ts';
import { randintT, randnT, uniformT } from './testing/inputs.ts';
import { RefSuite } from './testing/pyref.ts';

const F = torch.F;
const s = new RefSuite('functional: ');
const f64 = { dtype: 'float64' } as const;

// ---- convolution -----------------------------------------------------------------
const x1 = randnT([2, 4, 11], 100, f64);
const x2 = randnT([2, 4, 9, 8], 101, f64);
const x3 = randnT([1, 4, 6, 5, 7], 102, f64);
const x2f = randnT([2, 4, 9, 8], 103);
const w1 = randnT([6, 4, 3], 104, f64);
const w2 = randnT([6, 4, 3, 3], 105, f64);
const w3 = randnT([6, 4, 3, 2, 3], 106, f64);
const wg2 = randnT([6, 2, 3, 3], 107, f64); // groups = 2
const w2f = randnT([6, 4, 3, 3], 108);
const bias6 = randnT([6], 109, f64);
const bias6f = randnT([6], 110);

s.check('conv1d', { x1, w1, bias6 }, '(F.conv1d(x1, w1, bias6), F.conv1d(x1, w1, None, stride=2, padding=2, dilation=2))', () => [
  F.conv(x1, w1, bias6),
  F.conv(x1, w1, null, { stride: 2, padding: 2, dilation: 2 }),
]);
s.check(
  'conv2d',
  { x2, w2, bias6, wg2 },
  '(F.conv2d(x2, w2, bias6, padding=1), F.conv2d(x2, w2, None, stride=[2, 1], padding=[0, 2], dilation=[1, 2]), F.conv2d(x2, wg2, bias6, groups=2, padding=1))',
  () => [
    F.conv(x2, w2, bias6, { padding: 1 }),
    F.conv(x2, w2, null, { stride: [2, 1], padding: [0, 2], dilation: [1, 2] }),
    F.conv(x2, wg2, bias6, { groups: 2, padding: 1 }),
  ],
);
s.check('conv2d float32', { x2f, w2f, bias6f }, 'F.conv2d(x2f, w2f, bias6f, stride=2, padding=1)', () => F.conv(x2f, w2f, bias6f, { stride: 2, padding: 1 }));
s.check('conv3d', { x3, w3, bias6 }, '(F.conv3d(x3, w3, bias6, padding=1), F.conv3d(x3, w3, None, stride=2, padding=[1, 0, 1]))', () => [
  F.conv(x3, w3, bias6, { padding: 1 }),
  F.conv(x3, w3, null, { stride: 2, padding: [1, 0, 1] }),
]);

const tw1 = randnT([4, 3, 3], 111, f64); // [in, out/groups, k]
const tw2 = randnT([4, 3, 3, 2], 112, f64);
const tw3 = randnT([4, 2, 2, 3, 2], 113, f64);
const tb3 = randnT([3], 114, f64);
const tw2g = randnT([4, 2, 3, 3], 115, f64);
s.check(
  'convTranspose1d',
  { x1, tw1, tb3 },
  '(F.conv_transpose1d(x1, tw1, tb3), F.conv_transpose1d(x1, tw1, None, stride=2, padding=1, output_padding=1))',
  () => [F.convTranspose(x1, tw1, tb3), F.convTranspose(x1, tw1, null, { stride: 2, padding: 1, outputPadding: 1 })],
);
s.check(
  'convTranspose2d',
  { x2, tw2, tb3, tw2g },
  '(F.conv_transpose2d(x2, tw2, tb3, stride=2), F.conv_transpose2d(x2, tw2, None, stride=[2, 3], padding=[1, 0], output_padding=[1, 2], dilation=[1, 2]), F.conv_transpose2d(x2, tw2g, None, groups=2, stride=2))',
  () => [
    F.convTranspose(x2, tw2, tb3, { stride: 2 }),
    F.convTranspose(x2, tw2, null, { stride: [2, 3], padding: [1, 0], outputPadding: [1, 2], dilation: [1, 2] }),
    F.convTranspose(x2, tw2g, null, { groups: 2, stride: 2 }),
  ],
);
s.check('convTranspose3d', { x3, tw3 }, 'F.conv_transpose3d(x3, tw3, None, stride=2, padding=1, output_padding=[1, 0, 1])', () =>
  F.convTranspose(x3, tw3, null, { stride: 2, padding: 1, outputPadding: [1, 0, 1] }),
);

// ---- pooling ----------------------------------------------------------------------
s.check('maxPool1d', { x1 }, '(F.max_pool1d(x1, 2), F.max_pool1d(x1, 3, stride=2, padding=1, dilation=1, ceil_mode=True))', () => [
  F.maxPool(x1, 2),
  F.maxPool(x1, 3, { stride: 2, padding: 1, ceilMode: true }),
]);
s.check(
  'maxPool2d',
  { x2 },
  '(F.max_pool2d(x2, 2), F.max_pool2d(x2, [3, 2], stride=[2, 1], padding=[1, 0]), F.max_pool2d(x2, 2, stride=2, dilation=2, ceil_mode=True))',
  () => [F.maxPool(x2, 2), F.maxPool(x2, [3, 2], { stride: [2, 1], padding: [1, 0] }), F.maxPool(x2, 2, { stride: 2, dilation: 2, ceilMode: true })],
);
s.check('maxPool3d', { x3 }, '(F.max_pool3d(x3, 2), F.max_pool3d(x3, 3, stride=2, padding=1))', () => [
  F.maxPool(x3, 2),
  F.maxPool(x3, 3, { stride: 2, padding: 1 }),
]);
s.check('avgPool1d', { x1 }, '(F.avg_pool1d(x1, 3), F.avg_pool1d(x1, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True))', () => [
  F.avgPool(x1, 3),
  F.avgPool(x1, 3, { stride: 2, padding: 1, countIncludePad: false, ceilMode: true }),
]);
s.check(
  'avgPool2d',
  { x2 },
  '(F.avg_pool2d(x2, 2), F.avg_pool2d(x2, 3, stride=2, padding=1), F.avg_pool2d(x2, 3, stride=2, padding=1, count_include_pad=False))',
  () => [F.avgPool(x2, 2), F.avgPool(x2, 3, { stride: 2, padding: 1 }), F.avgPool(x2, 3, { stride: 2, padding: 1, countIncludePad: false })],
);
s.check('avgPool3d', { x3 }, '(F.avg_pool3d(x3, 2), F.avg_pool3d(x3, [2, 3, 3], stride=2, padding=1, ceil_mode=True))', () => [
  F.avgPool(x3, 2),
  F.avgPool(x3, [2, 3, 3], { stride: 2, padding: 1, ceilMode: true }),
]);
s.check('adaptive pools 1D', { x1 }, '(F.adaptive_avg_pool1d(x1, 4), F.adaptive_max_pool1d(x1, 3))', () => [
  F.adaptiveAvgPool(x1, 4),
  F.adaptiveMaxPool(x1, 3),
]);
s.check('adaptive pools 2D', { x2 }, '(F.adaptive_avg_pool2d(x2, [4, 3]), F.adaptive_avg_pool2d(x2, 1), F.adaptive_max_pool2d(x2, [5, 3]))', () => [
  F.adaptiveAvgPool(x2, [4, 3]),
  F.adaptiveAvgPool(x2, 1),
  F.adaptiveMaxPool(x2, [5, 3]),
]);
s.check('adaptive pools 3D', { x3 }, '(F.adaptive_avg_pool3d(x3, [2, 3, 4]), F.adaptive_max_pool3d(x3, 2))', () => [
  F.adaptiveAvgPool(x3, [2, 3, 4]),
  F.adaptiveMaxPool(x3, 2),
]);

// ---- interpolation ------------------------------------------------------------------
s.check(
  'interpolate nearest',
  { x1, x2, x3 },
  '(F.interpolate(x1, size=17), F.interpolate(x2, scale_factor=2), F.interpolate(x2, size=[5, 13]), F.interpolate(x3, scale_factor=[2, 1.5, 0.5]))',
  () => [
    F.interpolate(x1, { size: [17] }),
    F.interpolate(x2, { scaleFactor: 2 }),
    F.interpolate(x2, { size: [5, 13] }),
    F.interpolate(x3, { scaleFactor: [2, 1.5, 0.5] }),
  ],
);
for (const ac of [false, true]) {
  const py = ac ? 'True' : 'False';
  s.check(
    `interpolate linear 1D alignCorners=${ac}`,
    { x1 },
    `(F.interpolate(x1, size=20, mode='linear', align_corners=${py}), F.interpolate(x1, scale_factor=1.5, mode='linear', align_corners=${py}))`,
    () => [F.interpolate(x1, { size: [20], mode: 'linear', alignCorners: ac }), F.interpolate(x1, { scaleFactor: 1.5, mode: 'linear', alignCorners: ac })],
  );
  s.check(
    `interpolate bilinear alignCorners=${ac}`,
    { x2 },
    `(F.interpolate(x2, size=[13, 6], mode='bilinear', align_corners=${py}), F.interpolate(x2, scale_factor=2, mode='bilinear', align_corners=${py}))`,
    () => [F.interpolate(x2, { size: [13, 6], mode: 'linear', alignCorners: ac }), F.interpolate(x2, { scaleFactor: 2, mode: 'linear', alignCorners: ac })],
  );
  s.check(
    `interpolate trilinear alignCorners=${ac}`,
    { x3 },
    `(F.interpolate(x3, size=[9, 4, 10], mode='trilinear', align_corners=${py}), F.interpolate(x3, scale_factor=[2, 2, 0.5], mode='trilinear', align_corners=${py}))`,
    () => [
      F.interpolate(x3, { size: [9, 4, 10], mode: 'linear', alignCorners: ac }),
      F.interpolate(x3, { scaleFactor: [2, 2, 0.5], mode: 'linear', alignCorners: ac }),
    ],
  );
}

// ---- normalisation --------------------------------------------------------------------
const c4 = randnT([4], 120, f64);
const c4b = randnT([4], 121, f64);
const rm = randnT([4], 122, f64);
const rv = uniformT([4], 123, 0.5, 2, f64);
s.check(
  'batchNorm training updates running stats',
  { x2, c4, c4b, rm, rv },
  `m = rm.clone(); v = rv.clone()
y = F.batch_norm(x2, m, v, c4, c4b, training=True, momentum=0.2, eps=1e-4)
out = (y, m, v)`,
  () => {
    const m = rm.clone();
    const v = rv.clone();
    const y = F.batchNorm(x2, m, v, c4, c4b, true, { momentum: 0.2, eps: 1e-4 });
    return [y, m, v];
  },
);
s.check(
  'batchNorm eval uses running stats (1D, 3D inputs)',
  { x1, x3, c4, c4b, rm, rv },
  '(F.batch_norm(x1, rm, rv, c4, c4b, training=False), F.batch_norm(x3, rm, rv, None, None, training=False))',
  () => [F.batchNorm(x1, rm, rv, c4, c4b, false), F.batchNorm(x3, rm, rv, null, null, false)],
);
s.check('batchNorm without running stats', { x3 }, 'F.batch_norm(x3, None, None, training=True)', () => F.batchNorm(x3, null, null, null, null, true));
s.check(
  'instanceNorm 1D/2D/3D',
  { x1, x2, x3, c4, c4b },
  '(F.instance_norm(x1), F.instance_norm(x2, weight=c4, bias=c4b), F.instance_norm(x3, eps=1e-3))',
  () => [F.instanceNorm(x1), F.instanceNorm(x2, c4, c4b), F.instanceNorm(x3, null, null, { eps: 1e-3 })],
);
s.check('groupNorm', { x2, x3, c4, c4b }, '(F.group_norm(x2, 2, c4, c4b), F.group_norm(x3, 4), F.group_norm(x2, 1, eps=1e-3))', () => [
  F.groupNorm(x2, 2, c4, c4b),
  F.groupNorm(x3, 4),
  F.groupNorm(x2, 1, null, null, 1e-3),
]);
const lnw = randnT([9, 8], 124, f64);
const lnb = randnT([9, 8], 125, f64);
s.check('layerNorm', { x2, lnw, lnb }, '(F.layer_norm(x2, [8]), F.layer_norm(x2, [9, 8], lnw, lnb), F.layer_norm(x2, [4, 9, 8], eps=1e-3))', () => [
  F.layerNorm(x2, [8]),
  F.layerNorm(x2, [9, 8], lnw, lnb),
  F.layerNorm(x2, [4, 9, 8], null, null, 1e-3),
]);

// ---- activations -------------------------------------------------------------------------
s.check(
  'activations',
  { x2 },
  "(F.relu(x2), F.leaky_relu(x2), F.leaky_relu(x2, 0.2), F.gelu(x2), F.gelu(x2, approximate='tanh'), torch.sigmoid(x2), torch.tanh(x2))",
  () => [F.relu(x2), F.leakyRelu(x2), F.leakyRelu(x2, 0.2), F.gelu(x2), F.gelu(x2, 'tanh'), F.sigmoid(x2), F.tanh(x2)],
);
s.check('activations float32', { x2f }, '(F.gelu(x2f), torch.sigmoid(x2f), F.softmax(x2f, 1), F.log_softmax(x2f, -1))', () => [
  F.gelu(x2f),
  F.sigmoid(x2f),
  F.softmax(x2f, 1),
  F.logSoftmax(x2f, -1),
]);
s.check('softmax / logSoftmax over dims', { x2 }, '(F.softmax(x2, 1), F.softmax(x2, -1), F.log_softmax(x2, 1), F.log_softmax(x2 * 100, 2))', () => [
  F.softmax(x2, 1),
  F.softmax(x2, -1),
  F.logSoftmax(x2, 1),
  F.logSoftmax(x2.mul(100), 2),
]);

// ---- linear, embedding ------------------------------------------------------------------
const lw = randnT([5, 8], 130, f64);
const lb = randnT([5], 131, f64);
const ew = randnT([10, 3], 132, f64);
const eidx = randintT([2, 4], 133, 0, 10);
s.check('linear', { x2, lw, lb }, '(F.linear(x2, lw, lb), F.linear(x2, lw))', () => [F.linear(x2, lw, lb), F.linear(x2, lw)]);
s.check('embedding', { eidx, ew }, '(F.embedding(eidx, ew), F.embedding(eidx, ew, padding_idx=2))', () => [F.embedding(eidx, ew), F.embedding(eidx, ew, 2)]);

// ---- attention (torch 1.13 has no F.scaled_dot_product_attention: the formula) ----------
const q = randnT([2, 3, 5, 4], 140, f64);
const k = randnT([2, 3, 6, 4], 141, f64);
const v = randnT([2, 3, 6, 4], 142, f64);
const kSq = randnT([2, 3, 5, 4], 143, f64);
const bmask = torch.tidy(() => uniformT([5, 6], 144).gt(0.3).logicalOr(torch.arange(6).eq(0).unsqueeze(0)));
const amask = randnT([5, 6], 145, f64);
s.check(
  'scaledDotProductAttention',
  { q, k, v, kSq, bmask, amask },
  `def sdpa(q, k, v, add=None, scale=None):
    s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if add is not None: s = s + add
    w = torch.softmax(s, -1)
    return w @ v, w
bm = torch.zeros(5, 6, dtype=torch.float64).masked_fill(~bmask, float('-inf'))
cm = torch.zeros(5, 5, dtype=torch.float64).masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float('-inf'))
out = (sdpa(q, k, v), sdpa(q, k, v, bm), sdpa(q, k, v, amask), sdpa(q, kSq, kSq, cm), sdpa(q, k, v, scale=0.3))`,
  () => {
    const r = (o: { output: torch.Tensor; weights: torch.Tensor }) => [o.output, o.weights];
    return [
      r(F.scaledDotProductAttention(q, k, v)),
      r(F.scaledDotProductAttention(q, k, v, { mask: bmask })),
      r(F.scaledDotProductAttention(q, k, v, { mask: amask })),
      r(F.scaledDotProductAttention(q, kSq, kSq, { isCausal: true })),
      r(F.scaledDotProductAttention(q, k, v, { scale: 0.3 })),
    ];
  },
);

// ---- losses ----------------------------------------------------------------------------------
const logits = randnT([6, 4], 150, f64);
const tgt = torch.tidy(() => randintT([6], 151, 0, 4).maskedFill(torch.tensor([0, 1, 0, 0, 1, 0], [6], { dtype: 'bool' }), -100));
const tgtPlain = randintT([6], 152, 0, 4);
const cw = uniformT([4], 153, 0.5, 2, f64);
const seg = randnT([2, 3, 4, 5], 154, f64);
const segT = randintT([2, 4, 5], 155, 0, 3);
const seg3 = randnT([1, 3, 2, 3, 4], 156, f64);
const seg3T = randintT([1, 2, 3, 4], 157, 0, 3);
const probs = torch.tidy(() => F.softmax(randnT([6, 4], 158, f64), 1));
s.check(
  'crossEntropy',
  { logits, tgtPlain, cw },
  "(F.cross_entropy(logits, tgtPlain), F.cross_entropy(logits, tgtPlain, weight=cw), F.cross_entropy(logits, tgtPlain, reduction='sum'), F.cross_entropy(logits, tgtPlain, reduction='none'))",
  () => [
    F.crossEntropy(logits, tgtPlain),
    F.crossEntropy(logits, tgtPlain, { weight: cw }),
    F.crossEntropy(logits, tgtPlain, { reduction: 'sum' }),
    F.crossEntropy(logits, tgtPlain, { reduction: 'none' }),
  ],
);
s.check(
  'crossEntropy ignoreIndex and label smoothing',
  { logits, tgt, cw, tgtPlain },
  "(F.cross_entropy(logits, tgt), F.cross_entropy(logits, tgt, weight=cw, reduction='none'), F.cross_entropy(logits, tgtPlain, label_smoothing=0.1), F.cross_entropy(logits, tgt, weight=cw, label_smoothing=0.2), F.cross_entropy(logits, tgtPlain, ignore_index=1))",
  () => [
    F.crossEntropy(logits, tgt),
    F.crossEntropy(logits, tgt, { weight: cw, reduction: 'none' }),
    F.crossEntropy(logits, tgtPlain, { labelSmoothing: 0.1 }),
    F.crossEntropy(logits, tgt, { weight: cw, labelSmoothing: 0.2 }),
    F.crossEntropy(logits, tgtPlain, { ignoreIndex: 1 }),
  ],
);
s.check(
  'crossEntropy spatial 2D/3D and soft targets',
  { seg, segT, seg3, seg3T, logits, probs },
  '(F.cross_entropy(seg, segT), F.cross_entropy(seg3, seg3T, reduction="none"), F.cross_entropy(logits, probs), F.cross_entropy(logits, probs, label_smoothing=0.1))',
  () => [
    F.crossEntropy(seg, segT),
    F.crossEntropy(seg3, seg3T, { reduction: 'none' }),
    F.crossEntropy(logits, probs),
    F.crossEntropy(logits, probs, { labelSmoothing: 0.1 }),
  ],
);
s.check(
  'nllLoss',
  { logits, tgt, cw },
  '(F.nll_loss(F.log_softmax(logits, 1), tgt), F.nll_loss(F.log_softmax(logits, 1), tgt, weight=cw, reduction="sum"))',
  () => [F.nllLoss(F.logSoftmax(logits, 1), tgt), F.nllLoss(F.logSoftmax(logits, 1), tgt, { weight: cw, reduction: 'sum' })],
);
const bt = uniformT([6, 4], 160, 0, 1, f64);
const pw = uniformT([4], 161, 0.5, 3, f64);
const bw = uniformT([6, 4], 162, 0, 1, f64);
s.check(
  'bceWithLogits',
  { logits, bt, pw, bw },
  "(F.binary_cross_entropy_with_logits(logits, bt), F.binary_cross_entropy_with_logits(logits * 40, bt, pos_weight=pw), F.binary_cross_entropy_with_logits(logits, bt, weight=bw, reduction='none'), F.binary_cross_entropy_with_logits(logits, bt, reduction='sum'))",
  () => [
    F.bceWithLogits(logits, bt),
    F.bceWithLogits(logits.mul(40), bt, { posWeight: pw }),
    F.bceWithLogits(logits, bt, { weight: bw, reduction: 'none' }),
    F.bceWithLogits(logits, bt, { reduction: 'sum' }),
  ],
);
s.check('mse / l1', { logits, bt }, "(F.mse_loss(logits, bt), F.l1_loss(logits, bt, reduction='sum'), F.mse_loss(logits, bt, reduction='none'))", () => [
  F.mseLoss(logits, bt),
  F.l1Loss(logits, bt, 'sum'),
  F.mseLoss(logits, bt, 'none'),
]);

// ---- grid sampling ------------------------------------------------------------------------------
const theta2 = torch.tensor([0.9, -0.2, 0.1, 0.3, 1.1, -0.15, 1.2, 0.1, 0, -0.1, 0.8, 0.2], [2, 2, 3], f64);
const theta3 = torch.tensor([0.9, 0.1, 0, 0.05, -0.1, 1.1, 0.2, 0, 0.1, 0, 0.95, -0.1], [1, 3, 4], f64);
const grid2 = uniformT([2, 5, 7, 2], 170, -1.2, 1.2, f64);
const grid3 = uniformT([1, 3, 4, 5, 3], 171, -1.2, 1.2, f64);
const img2 = randnT([2, 3, 6, 7], 172, f64);
s.check(
  'affineGrid 2D/3D',
  { theta2, theta3 },
  '(F.affine_grid(theta2, [2, 3, 5, 4], align_corners=False), F.affine_grid(theta2, [2, 3, 5, 4], align_corners=True), F.affine_grid(theta3, [1, 2, 3, 4, 5], align_corners=False), F.affine_grid(theta3, [1, 2, 3, 4, 5], align_corners=True))',
  () => [
    F.affineGrid(theta2, [2, 3, 5, 4], false),
    F.affineGrid(theta2, [2, 3, 5, 4], true),
    F.affineGrid(theta3, [1, 2, 3, 4, 5], false),
    F.affineGrid(theta3, [1, 2, 3, 4, 5], true),
  ],
);
for (const mode of ['bilinear', 'nearest', 'bicubic'] as const) {
  for (const paddingMode of ['zeros', 'border', 'reflection'] as const) {
    s.check(
      `gridSample 2D ${mode} ${paddingMode}`,
      { img2, grid2 },
      `(F.grid_sample(img2, grid2, mode='${mode}', padding_mode='${paddingMode}', align_corners=False), F.grid_sample(img2, grid2, mode='${mode}', padding_mode='${paddingMode}', align_corners=True))`,
      () => [F.gridSample(img2, grid2, { mode, paddingMode, alignCorners: false }), F.gridSample(img2, grid2, { mode, paddingMode, alignCorners: true })],
    );
  }
}
for (const mode of ['bilinear', 'nearest'] as const) {
  s.check(
    `gridSample 3D ${mode}`,
    { x3, grid3 },
    `(F.grid_sample(x3, grid3, mode='${mode}', align_corners=False), F.grid_sample(x3, grid3, mode='${mode}', padding_mode='border', align_corners=True))`,
    () => [F.gridSample(x3, grid3, { mode }), F.gridSample(x3, grid3, { mode, paddingMode: 'border', alignCorners: true })],
  );
}
s.check(
  'affineGrid + gridSample (float32 pipeline)',
  { theta2, img2 },
  'F.grid_sample(img2.float(), F.affine_grid(theta2.float(), [2, 3, 8, 9], align_corners=False), align_corners=False)',
  () => F.gridSample(img2.float(), F.affineGrid(theta2.float(), [2, 3, 8, 9], false)),
);

// ---- dropout --------------------------------------------------------------------------------------
s.check(
  'dropout identities: p = 0 in training, any p in eval',
  { x2 },
  '(F.dropout(x2, 0.0, True), F.dropout(x2, 0.7, False), F.dropout2d(x2, 0.5, False))',
  () => [F.dropout(x2, 0, true), F.dropout(x2, 0.7, false), F.channelDropout(x2, 0.5, false)],
);

s.run();

test('functional: dropout p > 0 zeroes about p of the elements and scales the rest by 1 / (1 - p)', () => {
  torch.tidy(() => {
    torch.manualSeed(7);
    const x = uniformT([200, 250], 180, 1, 2);
    for (const p of [0.2, 0.5, 0.8]) {
      const y = F.dropout(x, p, true);
      const zero = y.eq(0).float().mean().item();
      // 50 000 Bernoulli draws: the std of the fraction is <= 0.0023, allow 5 sigma.
      assert.ok(Math.abs(zero - p) < 0.012, `p=${p}: fraction zeroed ${zero}`);
      const kept = y.ne(0);
      const ratio = y.maskedSelect(kept).div(x.maskedSelect(kept));
      assert.ok(
        ratio
          .sub(1 / (1 - p))
          .abs()
          .max()
          .item() < 1e-5,
        `p=${p}: kept values scaled by 1/(1-p)`,
      );
      // Unbiased: the mean is preserved in expectation.
      assert.ok(Math.abs(y.mean().item() / x.mean().item() - 1) < 0.05 * Math.sqrt(p / (1 - p)));
    }
  });
});

test('functional: channel dropout drops whole feature maps', () => {
  torch.tidy(() => {
    torch.manualSeed(8);
    const x = uniformT([40, 50, 4, 4], 181, 1, 2);
    const y = F.channelDropout(x, 0.5, true);
    const perChannelZero = y.eq(0).float().mean([2, 3]);
    // Each [n, c] map is either all zero or all kept.
    const mixed = perChannelZero.gt(0).logicalAnd(perChannelZero.lt(1)).any().item();
    assert.equal(mixed, 0);
    const frac = perChannelZero.mean().item();
    assert.ok(Math.abs(frac - 0.5) < 0.06, `fraction of channels dropped ${frac}`);
  });
});
