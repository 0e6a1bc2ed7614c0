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
