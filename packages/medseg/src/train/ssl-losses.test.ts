/** Self-supervised losses against hand-computed values and a PyTorch reference. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { runPython } from '../testing/python.ts';
import { Rng } from '../util/random.ts';
import { maskedReconstructionLoss, ntXentLoss } from './ssl-losses.ts';
import { cubeMask, patchMask } from './ssl-masking.ts';

test('NT-Xent: two identical orthogonal views at temperature 1 give log(2 + e) - 1', () => {
  torch.tidy(() => {
    // Each view's positive has cosine 1, its two negatives cosine 0: -log(e / (e + 1 + 1)) for all four views.
    const z = torch.tensor([2, 0, 0, 3], [2, 2]);
    assert.ok(Math.abs(ntXentLoss(z, z, 1).item() - (Math.log(2 + Math.E) - 1)) < 1e-6);
    // Swapped positives (view a of image 0 matches view b of image 1): cosine 0 with the positive, 1 with a negative.
    const w = torch.tensor([0, 3, 2, 0], [2, 2]);
    assert.ok(Math.abs(ntXentLoss(z, w, 1).item() - (Math.log(2 + Math.E) - 0)) < 1e-6);
  });
});

test('NT-Xent matches a PyTorch SimCLR reference on random embeddings', () => {
  torch.manualSeed(4);
  torch.tidy(() => {
    const a = torch.randn([4, 5], { dtype: 'float64' });
    const b = torch.randn([4, 5], { dtype: 'float64' });
    const PY = `
import json, sys, torch
d = json.load(sys.stdin)
a = torch.tensor(d['a'], dtype=torch.float64).reshape(4, 5); b = torch.tensor(d['b'], dtype=torch.float64).reshape(4, 5)
z = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
n = a.shape[0]
sim = z @ z.t() / 0.2
sim.fill_diagonal_(float('-inf'))
target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
print(torch.nn.functional.cross_entropy(sim, target).item())
`;
    const ref = Number(runPython(['-c', PY], { input: JSON.stringify({ a: a.toArray(), b: b.toArray() }) }));
    assert.ok(Math.abs(ntXentLoss(a, b, 0.2).item() - ref) < 1e-9, `${ntXentLoss(a, b, 0.2).item()} vs ${ref}`);
  });
});

test('masked reconstruction loss counts the masked voxels only', () => {
  torch.tidy(() => {
    const target = torch.tensor([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]);
    const mask = torch.tensor([1, 0, 0, 1, 0, 1], [1, 1, 2, 3]);
    const pred = torch.tensor([0, 100, -50, 4, 9, 3], [1, 1, 2, 3]);
    // Masked voxels 0, 3, 5: errors 1, 0, 3.
    assert.ok(Math.abs(maskedReconstructionLoss(pred, target, mask, 'l1').item() - 4 / 3) < 1e-6);
    assert.ok(Math.abs(maskedReconstructionLoss(pred, target, mask, 'l2').item() - 10 / 3) < 1e-6);
    // Two channels share one mask: six masked values.
    const t2 = torch.cat([target, target.mul(2)], 1);
    const p2 = torch.cat([pred, pred], 1);
    assert.ok(Math.abs(maskedReconstructionLoss(p2, t2, mask, 'l1').item() - (1 + 0 + 3 + 2 + 4 + 9) / 6) < 1e-6);
  });
});

test('MAE patch masks hide whole grid cells at the ratio; inpainting cubes hide at least the ratio', () => {
  const rng = new Rng(5);
  const m = patchMask(2, [8, 8], [4, 4], 0.5, rng);
  for (let b = 0; b < 2; b++) {
    const s = m.subarray(b * 64, (b + 1) * 64);
    assert.equal(
      s.reduce((a, v) => a + v, 0),
      32,
    );
    // Each 4x4 cell is all hidden or all shown.
    for (let cy = 0; cy < 2; cy++)
      for (let cx = 0; cx < 2; cx++) {
        const vals = new Set<number>();
        for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) vals.add(s[(cy * 4 + y) * 8 + cx * 4 + x]!);
        assert.equal(vals.size, 1);
      }
  }
  const c = cubeMask(1, [16, 16, 16], 0.3, rng);
  const share = c.reduce((a, v) => a + v, 0) / c.length;
  assert.ok(share >= 0.3 && share < 0.6, `hidden share ${share}`);
});
