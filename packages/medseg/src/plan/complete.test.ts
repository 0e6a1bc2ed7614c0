import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completePlan, defaultAugmentation, defaultInference, usesBatchDice } from './complete.ts';
import type { PlanDraft } from './types.ts';

const plan = (dims: PlanDraft['dims'], patchSize: number[], medianShape: [number, number, number]) => ({ dims, patchSize, medianShape }) as PlanDraft;

test('batch Dice follows nnU-Net: always in 2D; in 3D only when the patch is under a quarter of the median image', () => {
  assert.equal(usesBatchDice(plan('2d', [512, 512], [1, 512, 512])), true);
  // MSD hippocampus: the patch covers the whole (small) image.
  assert.equal(usesBatchDice(plan('3d_fullres', [40, 56, 40], [36, 50, 35])), false);
  // Abdominal CT: 128^3 of 400x512x512 is a small window.
  assert.equal(usesBatchDice(plan('3d_fullres', [128, 128, 128], [400, 512, 512])), true);
  // Just above the threshold.
  assert.equal(usesBatchDice(plan('3d_fullres', [64, 64, 64], [64, 128, 128])), false);
});

test('default TTA: mirroring everywhere; transposing only for 2D planes of equal spacing trained with free rotation', () => {
  const base = (dims: PlanDraft['dims'], spacing: [number, number, number]) =>
    ({ dims, targetSpacing: spacing, augmentation: defaultAugmentation(dims === '2d' ? 2 : 3, dims === '2d' ? [64, 64] : [32, 64, 64]) }) as PlanDraft;
  assert.deepEqual(defaultInference(base('2d', [1, 0.5, 0.5])), { mirror: true, stepFraction: 0.5, transpose: true, precision: 'fp32' });
  assert.equal(defaultInference(base('2d', [1, 0.5, 0.7])).transpose, false); // rectangular pixels
  assert.equal(defaultInference(base('3d_fullres', [1, 1, 1])).transpose, false);
  const noRotation = base('2d', [1, 1, 1]);
  noRotation.augmentation.rotation.p = 0;
  assert.equal(defaultInference(noRotation).transpose, false);
});

test('completePlan fills what a draft leaves out and keeps what it has; the optimizer follows the budget', () => {
  const draft = {
    ...plan('3d_fullres', [40, 56, 40], [36, 50, 35]),
    targetSpacing: [1, 1, 1],
    augmentation: defaultAugmentation(3, [40, 56, 40]),
    budget: null,
  } as PlanDraft;
  const full = completePlan(draft);
  assert.equal(full.training.optimizer, 'sgd');
  assert.equal(full.training.schedule, 'poly');
  assert.equal(full.training.timeBudgetMinutes, 0);
  assert.deepEqual(full.inference, { mirror: true, stepFraction: 0.5, transpose: false, precision: 'fp32' });
  assert.equal(full.training.precision, 'fp32');
  assert.match(full.precisionChoice.reason, /not measured/);
  const budgeted = completePlan({ ...draft, budget: { minutes: 5 } as PlanDraft['budget'] });
  assert.equal(budgeted.training.optimizer, 'adamw');
  assert.equal(budgeted.training.timeBudgetMinutes, 5);
  // A partial hand-written section: the given fields stay, the defaults follow the given optimizer.
  const partial = completePlan({
    ...draft,
    budget: { minutes: 5 } as PlanDraft['budget'],
    training: { optimizer: 'sgd', lr: 0.003, loss: { name: 'dice_focal' } },
    inference: { mirror: false },
  });
  assert.equal(partial.training.optimizer, 'sgd');
  assert.equal(partial.training.lr, 0.003);
  assert.equal(partial.training.schedule, 'poly');
  assert.deepEqual(partial.training.loss, { name: 'dice_focal', batchDice: false });
  assert.deepEqual(partial.inference, { mirror: false, stepFraction: 0.5, transpose: false, precision: 'fp32' });
  // A precision set in the file stays, with its reason.
  const bf16 = completePlan({ ...draft, training: { precision: 'bf16' }, inference: { precision: 'bf16' }, precisionChoice: { reason: 'by hand' } });
  assert.equal(bf16.training.precision, 'bf16');
  assert.equal(bf16.inference.precision, 'bf16');
  assert.equal(bf16.precisionChoice.reason, 'by hand');
  // Choices apply where the draft has nothing, never over what it has.
  assert.equal(completePlan(draft, { optimizer: 'adamw' }).training.optimizer, 'adamw');
  assert.equal(completePlan({ ...draft, training: { optimizer: 'sgd' } }, { optimizer: 'adamw' }).training.optimizer, 'sgd');
});
