/**
 * The TTA levels the model card lists and `medseg predict --tta` chooses: their
 * passes per tile, and each level's Dice is the Dice of predicting with that
 * level's settings.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { PreprocessedCase } from '../data/types.ts';
import { ttaSettings } from '../infer/predict.ts';
import { diceScores, predictCaseLabels } from '../infer/predict-case.ts';
import { createNetwork } from '../models/registry.ts';
import { smallConfig } from '../testing/models.ts';
import type { Plan } from '../plan/types.ts';
import { measureTtaLevels } from './tta-levels.ts';

function disc(seed: number, n = 48): PreprocessedCase {
  const data = new Float32Array(n * n);
  const label = new Uint8Array(n * n);
  const cy = 18 + (seed % 12);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const inside = (y - cy) ** 2 + (x - 24) ** 2 < 100;
      label[y * n + x] = inside ? 1 : 0;
      data[y * n + x] = (inside ? 1 : 0) + 0.3 * Math.sin(seed * 7 + x * 1.3 + y * 0.7);
    }
  return { id: `c${seed}`, data, label, channels: 1, shape: [1, n, n], spacing: [1, 1, 1], properties: {} as PreprocessedCase['properties'] };
}

test('TTA levels: none 1 pass, axis-flips 3, mirror 4, full 8 (a transposing 2D plan); each row is that level run on the same cases', () => {
  torch.manualSeed(3);
  const net = createNetwork(smallConfig('unet', 2, { features: [8, 16] }));
  net.eval();
  const plan = {
    patchSize: [32, 32],
    network: { numClasses: 2 },
    inference: { mirror: true, transpose: true, stepFraction: 0.5, precision: 'fp32' },
  } as unknown as Plan;
  const cases = [1, 2, 3].map((s) => disc(s));
  try {
    const rows = measureTtaLevels(net, cases, plan);
    assert.deepEqual(
      rows.map((r) => [r.level, r.passes, r.cases]),
      [
        ['none', 1, 3],
        ['axis-flips', 3, 3],
        ['mirror', 4, 3],
        ['full', 8, 3],
      ],
    );
    for (const r of rows) {
      const tta = ttaSettings(plan.inference, r.level);
      const d = cases.map((c) => diceScores(predictCaseLabels(net, c, plan.patchSize, tta), c.label!, 2)[0]!).filter(Number.isFinite);
      const mean = d.length ? d.reduce((a, b) => a + b, 0) / d.length : NaN;
      assert.ok(Object.is(mean, r.meanDice) || Math.abs(mean - r.meanDice) < 1e-12, `${r.level}: ${mean} vs ${r.meanDice}`);
      assert.ok(r.secondsPerCase > 0);
    }
    // 3D (or no transposition): mirror is full, measured once.
    const noTranspose = measureTtaLevels(net, cases.slice(0, 1), { ...plan, inference: { ...plan.inference, transpose: false } } as Plan);
    assert.deepEqual(
      noTranspose.map((r) => [r.level, r.passes]),
      [
        ['none', 1],
        ['axis-flips', 3],
        ['mirror', 4],
        ['full', 4],
      ],
    );
    assert.equal(noTranspose[3]!.secondsPerCase, noTranspose[2]!.secondsPerCase);
  } finally {
    net.dispose();
  }
});

test('ttaSettings: false and none are one pass, mirror drops the transposition, full and true are the plan', () => {
  const inference = { mirror: true, transpose: true, stepFraction: 0.5, precision: 'fp32' } as Plan['inference'];
  assert.deepEqual(ttaSettings(inference, false), { mirror: false });
  assert.deepEqual(ttaSettings(inference, 'none'), { mirror: false });
  assert.deepEqual(ttaSettings(inference, 'mirror'), { ...inference, transpose: false });
  assert.deepEqual(ttaSettings(inference, 'axis-flips'), { ...inference, transpose: false, mirrorSingleAxes: true });
  assert.equal(ttaSettings(inference, 'full'), inference);
  assert.equal(ttaSettings(inference, true), inference);
  assert.equal(ttaSettings(inference, undefined), inference);
});
