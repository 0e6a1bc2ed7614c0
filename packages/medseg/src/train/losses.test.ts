import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { softDiceLoss, focalLoss, segmentationLoss, deepSupervisionWeights, deepSupervisionLoss } from './losses.ts';
import { runPython } from '../testing/python.ts';

// Independent reference: the same formulas written in PyTorch (Debian python3-torch).
const PY = `
import json, sys, torch
d = json.load(sys.stdin)
x = torch.tensor(d['logits'], dtype=torch.float64).reshape(d['shape'])
y = torch.tensor(d['labels'], dtype=torch.int64).reshape([d['shape'][0]] + d['shape'][2:])
C = x.shape[1]
p = torch.softmax(x, 1)
oh = torch.nn.functional.one_hot(y, C).movedim(-1, 1).double()
def dice(batch, bg):
    axes = [0] + list(range(2, x.dim())) if batch else list(range(2, x.dim()))
    tp = (p * oh).sum(axes); fp = (p * (1 - oh)).sum(axes); fn = ((1 - p) * oh).sum(axes)
    dc = (2 * tp + 1e-5) / (2 * tp + fp + fn + 1e-5)
    if not bg: dc = dc[..., 1:]
    return 1 - dc.mean()
logpt = torch.log_softmax(x, 1).gather(1, y.unsqueeze(1)).squeeze(1)
focal = (-(1 - logpt.exp()) ** 2 * logpt).mean()
ce = torch.nn.functional.cross_entropy(x, y)
print(json.dumps({'dice': dice(False, False).item(), 'dice_batch_bg': dice(True, True).item(), 'focal': focal.item(), 'ce': ce.item()}))
`;

test('soft Dice, focal and Dice+CE match a PyTorch reference', () => {
  torch.manualSeed(3);
  const shape = [2, 3, 5, 6, 4];
  torch.tidy(() => {
    const logits = torch.randn(shape, { dtype: 'float64' });
    const labels = torch.randint(0, 3, [2, 5, 6, 4]);
    const ref = JSON.parse(runPython(['-c', PY], { input: JSON.stringify({ logits: logits.toArray(), labels: labels.toArray(), shape }) }));
    assert.ok(Math.abs(softDiceLoss(logits, labels).item() - ref.dice) < 1e-9);
    assert.ok(Math.abs(softDiceLoss(logits, labels, { batchDice: true, includeBackground: true }).item() - ref.dice_batch_bg) < 1e-9);
    assert.ok(Math.abs(focalLoss(logits, labels).item() - ref.focal) < 1e-9);
    assert.ok(Math.abs(segmentationLoss(logits, labels, { name: 'dice_ce' }).item() - (ref.dice + ref.ce)) < 1e-9);
    assert.ok(Math.abs(segmentationLoss(logits, labels, { name: 'dice_focal' }).item() - (ref.dice + ref.focal)) < 1e-9);
  });
});

test('a perfect prediction has Dice loss near 0', () => {
  torch.tidy(() => {
    const labels = torch.randint(0, 2, [1, 8, 8]);
    const logits = torch.oneHot(labels, 2).permute([0, 3, 1, 2]).float().mul(50);
    assert.ok(softDiceLoss(logits, labels).item() < 1e-4);
  });
});

test('deep supervision weights follow nnU-Net (1, 1/2, 1/4, ..., last 0, normalised)', () => {
  const w = deepSupervisionWeights(4);
  const raw = [1, 0.5, 0.25, 0];
  const s = raw.reduce((a, b) => a + b);
  w.forEach((v, i) => assert.ok(Math.abs(v - raw[i]! / s) < 1e-12));
  assert.deepEqual(deepSupervisionWeights(1), [1]);
});

test('deep supervision loss downsamples the target per head and is differentiable', () => {
  torch.tidy(() => {
    const full = torch.randn([1, 2, 8, 8]).requiresGrad_();
    const half = torch.randn([1, 2, 4, 4]).requiresGrad_();
    const quarter = torch.randn([1, 2, 2, 2]).requiresGrad_();
    const labels = torch.randint(0, 2, [1, 8, 8]);
    const loss = deepSupervisionLoss([full, half, quarter], labels, { name: 'dice_ce' });
    loss.backward();
    assert.ok(full.grad!.abs().sum().item() > 0);
    assert.ok(half.grad!.abs().sum().item() > 0);
    assert.equal(quarter.grad, null); // weight 0: not part of the graph
  });
});
