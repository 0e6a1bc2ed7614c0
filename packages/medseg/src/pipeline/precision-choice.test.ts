/**
 * The plan's precision chosen on this machine: the rule applied to both
 * training and inference with the reason recorded, and one real timing of
 * a small planned network in fp32 and bf16.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { completePlan, defaultAugmentation } from '../plan/complete.ts';
import { PLAN_SCHEMA, type Plan } from '../plan/types.ts';
import { validatePlan } from '../plan/validate.ts';
import { smallConfig } from '../testing/models.ts';
import { choosePrecision } from './precision-choice.ts';

function smallPlan(): Plan {
  return completePlan({
    schema: PLAN_SCHEMA,
    dataset: 'tiny',
    dims: '2d',
    channels: ['gray'],
    labels: { 0: 'background', 1: 'object' },
    targetSpacing: [1, 1, 1],
    medianShape: [1, 64, 64],
    patchSize: [64, 64],
    batchSize: 4,
    network: smallConfig('unet', 2, { features: [16, 32, 64] }),
    normalization: [{ channel: 'gray', scheme: 'zscore', useMaskForNorm: false }],
    resampling: { image: 'bspline3', label: 'onehot-linear', separateZ: false, anisotropyThreshold: 3 },
    augmentation: defaultAugmentation(2, [64, 64]),
    oversampleForeground: 0.33,
    iterationsPerEpoch: 10,
    epochs: 1,
    budget: null,
    reference: { patchSize: [64, 64], batchSize: 4, features: [16, 32, 64] },
  });
}

test('choosePrecision sets training and inference alike and records the timings and reason; no bf16 CPU is not timed', async () => {
  const plan = smallPlan();
  const timed: string[] = [];
  const timeStep = async (_p: Plan, precision: 'fp32' | 'bf16') => (timed.push(precision), precision === 'fp32' ? 0.2 : 0.15);
  const fast = await choosePrecision(plan, { cpuBf16: ['avx512_bf16'], timeStep });
  assert.deepEqual(timed, ['fp32', 'bf16']);
  assert.equal(fast.training.precision, 'bf16');
  assert.equal(fast.inference.precision, 'bf16');
  assert.equal(fast.precisionChoice.bf16StepSeconds, 0.15);
  assert.match(fast.precisionChoice.reason, /^bf16:/);
  validatePlan(fast);
  timed.length = 0;
  const none = await choosePrecision(plan, { cpuBf16: [], timeStep });
  assert.deepEqual(timed, []);
  assert.equal(none.training.precision, 'fp32');
  assert.equal(none.inference.precision, 'fp32');
  assert.match(none.precisionChoice.reason, /no native bf16/);
  // A network whose bf16 step fails stays fp32 and says why.
  const failing = async (_p: Plan, precision: 'fp32' | 'bf16') => {
    if (precision === 'bf16') throw new Error('aten::foo failed: no bf16 kernel');
    return 0.2;
  };
  const failed = await choosePrecision(plan, { cpuBf16: ['avx512_bf16'], timeStep: failing });
  assert.equal(failed.training.precision, 'fp32');
  assert.match(failed.precisionChoice.reason, /^fp32: a bf16 training step of this network failed \(aten::foo failed: no bf16 kernel\)/);
});

test('choosePrecision times a real step of the planned network in both precisions on this CPU', { timeout: 120_000 }, async () => {
  const chosen = await choosePrecision(smallPlan());
  const c = chosen.precisionChoice;
  if (!torch.bf16Support().native) {
    assert.equal(chosen.training.precision, 'fp32');
    return;
  }
  assert.ok(c.fp32StepSeconds! > 0 && c.bf16StepSeconds! > 0, JSON.stringify(c));
  assert.equal(chosen.training.precision, c.fp32StepSeconds! / c.bf16StepSeconds! >= 1.1 ? 'bf16' : 'fp32', c.reason);
  assert.equal(chosen.inference.precision, chosen.training.precision);
});
