/**
 * The plan's precision chosen on this machine: the rule applied to training
 * (a timed step) and to inference (a timed pass) apart, with the reasons
 * recorded, and one real timing of a small planned network in fp32 and bf16.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { completePlan, defaultAugmentation } from '../plan/complete.ts';
import { PLAN_SCHEMA, type Plan } from '../plan/types.ts';
import { validatePlan } from '../plan/validate.ts';
import { smallConfig } from '../testing/models.ts';
import { decideInferencePrecision, decidePlanPrecision, type PrecisionChoiceOptions } from './precision-choice.ts';

/** The plan with both precisions decided (what pipeline/precision-plan.ts does for a plan it does not resize). */
async function choosePrecision(plan: Plan, o: PrecisionChoiceOptions = {}): Promise<Plan> {
  const cpuBf16 = o.cpuBf16 ?? torch.bf16Support().flags;
  const d = await decidePlanPrecision(plan, { ...o, cpuBf16 });
  const inf = await decideInferencePrecision(plan, cpuBf16, o);
  return {
    ...plan,
    training: { ...plan.training, precision: d.precision },
    inference: { ...plan.inference, precision: inf.precision },
    precisionChoice: { ...d.choice, inference: inf.choice },
  };
}

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

test('choosePrecision decides training and inference apart and records the timings and reasons; no bf16 CPU is not timed', async () => {
  const plan = smallPlan();
  const timed: string[] = [];
  const timeStep = async (_p: Plan, precision: 'fp32' | 'bf16') => (timed.push(`step ${precision}`), precision === 'fp32' ? 0.2 : 0.15);
  // A pass of the 4 mirrored 64x64 tiles: slower in bf16.
  const timePass = async (_p: Plan, batch: number, precision: 'fp32' | 'bf16') => (
    timed.push(`pass ${batch} ${precision}`),
    precision === 'fp32' ? 0.01 : 0.02
  );
  const fast = await choosePrecision(plan, { cpuBf16: ['avx512_bf16'], timeStep, timePass });
  assert.deepEqual(timed, ['step fp32', 'step bf16', 'pass 4 fp32', 'pass 4 bf16']);
  assert.equal(fast.training.precision, 'bf16');
  assert.equal(fast.inference.precision, 'fp32', 'prediction stays fp32 where its pass is slower in bf16');
  assert.equal(fast.precisionChoice.bf16StepSeconds, 0.15);
  assert.match(fast.precisionChoice.reason, /^bf16:/);
  assert.match(fast.precisionChoice.inference!.reason, /^fp32: .*an inference pass of 4 tiles takes 20 ms in bf16 vs 10 ms in fp32/);
  assert.equal(fast.precisionChoice.inference!.bf16PassSeconds, 0.02);
  validatePlan(fast);
  const both = await choosePrecision(plan, { cpuBf16: ['avx512_bf16'], timeStep, timePass: async (_p, _b, precision) => (precision === 'fp32' ? 0.02 : 0.01) });
  assert.equal(both.inference.precision, 'bf16');
  timed.length = 0;
  const none = await choosePrecision(plan, { cpuBf16: [], timeStep, timePass });
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

test('choosePrecision times a real step and a real inference pass of the planned network in both precisions on this CPU', { timeout: 120_000 }, async () => {
  const chosen = await choosePrecision(smallPlan());
  const c = chosen.precisionChoice;
  if (!torch.bf16Support().native) {
    assert.equal(chosen.training.precision, 'fp32');
    return;
  }
  assert.ok(c.fp32StepSeconds! > 0 && c.bf16StepSeconds! > 0, JSON.stringify(c));
  assert.equal(chosen.training.precision, c.fp32StepSeconds! / c.bf16StepSeconds! >= 1.1 ? 'bf16' : 'fp32', c.reason);
  const i = c.inference!;
  assert.ok(i.fp32PassSeconds! > 0 && i.bf16PassSeconds! > 0, JSON.stringify(i));
  assert.equal(chosen.inference.precision, i.fp32PassSeconds! / i.bf16PassSeconds! >= 1.1 ? 'bf16' : 'fp32', i.reason);
});
