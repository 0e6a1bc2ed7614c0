/**
 * A plan that trains in bf16 is sized with bf16 steps: the planner spends the
 * faster steps by its own rule (larger patch or wider network first, then
 * iterations) and the plan says so; inference precision is decided on the
 * final network. Synthetic timers keep the test independent of this machine.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CaseFingerprint, Fingerprint } from '../data/fingerprint.ts';
import type { StepTimer } from '../data/planner.ts';
import { validatePlan } from '../plan/validate.ts';
import { planWithPrecision } from './precision-plan.ts';

function hippocampusLike(): Fingerprint {
  const cases: CaseFingerprint[] = Array.from({ length: 260 }, (_, i) => ({
    id: String(i),
    spacing: [1, 1, 1],
    shape: [36, 50, 35],
    croppedShape: [36, 50, 35],
  }));
  return {
    schema: 'medseg.fingerprint/1',
    name: 'synthetic',
    channels: ['MRI'],
    labels: { 0: 'background', 1: 'a', 2: 'b' },
    dims: 3,
    cases,
    intensity: [{ mean: 100, median: 90, std: 20, min: -1000, max: 3000, percentile_00_5: -50, percentile_99_5: 400 }],
    classFrequencies: {},
    medianRelativeSizeAfterCropping: 1,
  };
}

const throughput = { macsPerSecond: 5e10, overheadSeconds: 0.05 };
const budget = { minutes: 30, cores: 2, memoryGiB: 8 };
// A synthetic machine: a step costs voxels x batch x width^2 (fp32), half that in bf16.
const fp32Seconds = (patch: number[], batch: number, width: number) => 0.02 + (patch.reduce((a, b) => a * b, 1) * batch * width ** 2) / 1e8;
const stepTimer =
  (timed: string[]): StepTimer =>
  (n, patch, batch, training) => {
    const precision = training.precision ?? 'fp32';
    timed.push(precision);
    return fp32Seconds(patch, batch, n.features[0]!) * (precision === 'bf16' ? 0.5 : 1);
  };
const cost = (p: { patchSize: number[]; batchSize: number; network: { features: number[] } }) =>
  p.patchSize.reduce((a, b) => a * b, 1) * p.batchSize * p.network.features[0]! ** 2;

test('a bf16 plan is sized with bf16 steps: a cheaper step buys a larger network or patch, and the iterations fit the bf16 step', async () => {
  const fp = hippocampusLike();
  const steps: string[] = [];
  const passes: string[] = [];
  const timePass = async (_n: unknown, patch: number[], batch: number, precision: string) => (
    passes.push(`${patch.join('x')} ${batch} ${precision}`),
    precision === 'bf16' ? 0.02 : 0.01
  );
  const fp32 = await planWithPrecision(fp, { planner: { budget, throughput, stepTimer: stepTimer([]) }, choice: 'fp32', timePass, cpuBf16: ['avx512_bf16'] });
  const auto = await planWithPrecision(fp, {
    planner: { budget, throughput, stepTimer: stepTimer(steps) },
    choice: 'auto',
    timePass,
    cpuBf16: ['avx512_bf16'],
  });
  validatePlan(auto);
  assert.equal(fp32.training.precision, 'fp32');
  assert.equal(auto.training.precision, 'bf16');
  assert.ok(steps.includes('bf16') && steps.indexOf('bf16') > steps.indexOf('fp32'), 'fp32 steps first, then bf16');
  const expected = fp32Seconds(auto.patchSize, auto.batchSize, auto.network.features[0]!) * 0.5;
  assert.ok(Math.abs(auto.budget!.stepSeconds - expected) < 1e-12, 'the plan carries the bf16 step time of its own network');
  const total = auto.epochs * auto.iterationsPerEpoch;
  assert.ok(total * auto.budget!.stepSeconds <= budget.minutes * 60 * 0.85 + 1e-9, 'the iterations fit the bf16 step');
  assert.ok(
    cost(auto) > cost(fp32),
    `the faster step buys a larger network or patch: ${auto.patchSize} w${auto.network.features[0]} vs ${fp32.patchSize} w${fp32.network.features[0]}`,
  );
  assert.match(auto.precisionChoice.reason, /^bf16: .*; the plan is sized with bf16 steps of \d+ ms: patch .* \(sized with fp32 steps: patch /);
  // Inference is decided on the final (bf16-sized) patch, once per precision.
  assert.deepEqual(
    passes.map((p) => p.split(' ')[0]),
    [auto.patchSize.join('x'), auto.patchSize.join('x')],
  );
  assert.equal(auto.inference.precision, 'fp32', 'the pass is slower in bf16');
  assert.match(auto.precisionChoice.inference!.reason, /^fp32: /);
});

test('no bf16 on the CPU, or a failing bf16 step: the fp32-sized plan, not re-timed, with the reason; an unbudgeted plan is not timed', async () => {
  const fp = hippocampusLike();
  const timePass = async () => 0.01;
  const steps: string[] = [];
  const none = await planWithPrecision(fp, { planner: { budget, throughput, stepTimer: stepTimer(steps) }, choice: 'auto', timePass, cpuBf16: [] });
  assert.ok(!steps.includes('bf16'));
  assert.equal(none.training.precision, 'fp32');
  assert.match(none.precisionChoice.reason, /no native bf16/);
  const failing: StepTimer = (n, patch, batch, training) => {
    if (training.precision === 'bf16') throw new Error('aten::foo failed: no bf16 kernel');
    return fp32Seconds(patch, batch, n.features[0]!);
  };
  const failed = await planWithPrecision(fp, { planner: { budget, throughput, stepTimer: failing }, choice: 'auto', timePass, cpuBf16: ['avx512_bf16'] });
  assert.equal(failed.training.precision, 'fp32');
  assert.match(failed.precisionChoice.reason, /^fp32: a bf16 training step of this network failed/);
  assert.deepEqual([failed.patchSize, failed.network.features], [none.patchSize, none.network.features]);
  const untimed = await planWithPrecision(fp, { planner: { throughput }, choice: 'auto', timePass, cpuBf16: ['avx512_bf16'] });
  assert.equal(untimed.training.precision, 'fp32');
  assert.match(untimed.precisionChoice.reason, /not measured/);
});
