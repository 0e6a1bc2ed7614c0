import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { softDiceLoss, focalLoss, segmentationLoss, deepSupervisionWeights, deepSupervisionLoss, skeletonRecallLoss, skeletonTargets } from './losses.ts';
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

test('skeleton recall: value and gradient match PyTorch; in the deep-supervision loss each head gets the skeleton on its grid', () => {
  torch.manualSeed(5);
  torch.tidy(() => {
    const shape = [2, 3, 6, 7];
    const logits = torch.randn(shape, { dtype: 'float64' }).requiresGrad_();
    const skeleton = torch.randint(0, 2, shape).to('float64');
    const loss = skeletonRecallLoss(logits, skeleton);
    loss.backward();
    const ref = JSON.parse(
      runPython(
        [
          '-c',
          `
import json, sys, torch
d = json.load(sys.stdin)
x = torch.tensor(d['logits'], dtype=torch.float64).reshape(d['shape']).requires_grad_()
s = torch.tensor(d['skeleton'], dtype=torch.float64).reshape(d['shape'])
p = torch.softmax(x, 1)
axes = [0, 2, 3]
rec = ((p * s).sum(axes) + 1e-5) / (s.sum(axes) + 1e-5)
loss = 1 - rec[1:].mean()
loss.backward()
print(json.dumps({'loss': loss.item(), 'grad': x.grad.flatten().tolist()}))
`,
        ],
        { input: JSON.stringify({ logits: logits.toArray(), skeleton: skeleton.toArray(), shape }) },
      ),
    ) as { loss: number; grad: number[] };
    assert.ok(Math.abs(loss.item() - ref.loss) < 1e-12, `${loss.item()} vs ${ref.loss}`);
    const g = logits.grad!.toArray() as number[];
    ref.grad.forEach((v, i) => assert.ok(Math.abs(g[i]! - v) < 1e-12, `grad[${i}] ${g[i]} vs ${v}`));

    // A 2-class batch: a vertical bar of class 1; two heads (full and half resolution, weights 2/3 and 1/3).
    const bar = new Float32Array(64);
    for (let r = 1; r < 7; r++) for (let c = 3; c < 6; c++) bar[r * 8 + c] = 1;
    const y = torch.tensor(bar, [1, 8, 8]).long();
    const full = torch.randn([1, 2, 8, 8]);
    const half = torch.randn([1, 2, 4, 4]);
    const none = torch.randn([1, 2, 2, 2]);
    const o = { name: 'dice_ce' as const, skeletonRecall: 0.5 };
    const skel = skeletonTargets(y, 2);
    assert.deepEqual(skel.shape, [1, 2, 8, 8]);
    assert.equal(skel.narrow(1, 0, 1).sum().item(), 0, 'no background skeleton');
    assert.ok(skel.narrow(1, 1, 1).sum().item() >= 6, 'a tube along the bar');
    const halfSkel = torch.F.interpolate(skel, { size: [4, 4], mode: 'nearest' });
    const halfY = torch.F.interpolate(y.unsqueeze(1).float(), { size: [4, 4], mode: 'nearest' }).long();
    const expected = segmentationLoss(full, y, { name: 'dice_ce' })
      .add(skeletonRecallLoss(full, skel).mul(0.5))
      .mul(2 / 3)
      .add(
        segmentationLoss(half, halfY, { name: 'dice_ce' })
          .add(skeletonRecallLoss(half, halfSkel).mul(0.5))
          .mul(1 / 3),
      );
    const got = deepSupervisionLoss([full, half, none], y, o);
    assert.ok(Math.abs(got.item() - expected.item()) < 1e-6, `${got.item()} vs ${expected.item()}`);
    // The skeletons the loader's workers made are used as given: a tube on the other half of the image changes the term.
    assert.equal(deepSupervisionLoss([full, half, none], y, o, skel).item(), got.item());
    const shifted = torch.tensor(
      new Float32Array(128).map((_, i) => (i >= 64 && i % 8 < 2 ? 1 : 0)),
      [1, 2, 8, 8],
    );
    const withShifted = segmentationLoss(full, y, { name: 'dice_ce' })
      .add(skeletonRecallLoss(full, shifted).mul(0.5))
      .mul(2 / 3)
      .add(
        segmentationLoss(half, halfY, { name: 'dice_ce' })
          .add(skeletonRecallLoss(half, torch.F.interpolate(shifted, { size: [4, 4], mode: 'nearest' })).mul(0.5))
          .mul(1 / 3),
      );
    const gotShifted = deepSupervisionLoss([full, half, none], y, o, shifted).item();
    assert.ok(Math.abs(gotShifted - withShifted.item()) < 1e-6, `${gotShifted} vs ${withShifted.item()}`);
    assert.notEqual(gotShifted, got.item());
    // Without the weight the term is absent; a 3D batch is refused with the reason.
    assert.ok(Math.abs(deepSupervisionLoss(full, y, { name: 'dice_ce' }).item() - segmentationLoss(full, y, { name: 'dice_ce' }).item()) < 1e-7);
    assert.throws(() => deepSupervisionLoss(torch.randn([1, 2, 4, 4, 4]), torch.zeros([1, 4, 4, 4], { dtype: 'int64' }), o), /2D label maps/);
  });
});
