import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan } from '../data/plan.ts';
import { usesBatchDice } from './training-config.ts';

const plan = (dims: Plan['dims'], patchSize: number[], medianShape: [number, number, number]) => ({ dims, patchSize, medianShape }) as Plan;

test('batch Dice follows nnU-Net: always in 2D; in 3D only when the patch is under a quarter of the median image', () => {
  assert.equal(usesBatchDice(plan('2d', [512, 512], [1, 512, 512])), true);
  // MSD hippocampus: the patch covers the whole (small) image.
  assert.equal(usesBatchDice(plan('3d_fullres', [40, 56, 40], [36, 50, 35])), false);
  // Abdominal CT: 128^3 of 400x512x512 is a small window.
  assert.equal(usesBatchDice(plan('3d_fullres', [128, 128, 128], [400, 512, 512])), true);
  // Just above the threshold.
  assert.equal(usesBatchDice(plan('3d_fullres', [64, 64, 64], [64, 128, 128])), false);
});

test('default TTA: mirroring everywhere; transposing only for 2D planes of equal spacing trained with free rotation', async () => {
  const { inferenceSettings } = await import('./training-config.ts');
  const { defaultAugmentation } = await import('../data/plan.ts');
  const base = (dims: Plan['dims'], spacing: [number, number, number]) =>
    ({ dims, targetSpacing: spacing, augmentation: defaultAugmentation(dims === '2d' ? 2 : 3, dims === '2d' ? [64, 64] : [32, 64, 64]) }) as Plan;
  assert.deepEqual(inferenceSettings(base('2d', [1, 0.5, 0.5])), { mirror: true, stepFraction: 0.5, transpose: true });
  assert.equal(inferenceSettings(base('2d', [1, 0.5, 0.7])).transpose, false); // rectangular pixels
  assert.equal(inferenceSettings(base('3d_fullres', [1, 1, 1])).transpose, false);
  const noRotation = base('2d', [1, 1, 1]);
  noRotation.augmentation.rotation.p = 0;
  assert.equal(inferenceSettings(noRotation).transpose, false);
  // A plan's own setting wins, and a hand edit is checked.
  assert.deepEqual(inferenceSettings({ ...noRotation, inference: { mirror: false, stepFraction: 0.25 } }), { mirror: false, stepFraction: 0.25 });
});
