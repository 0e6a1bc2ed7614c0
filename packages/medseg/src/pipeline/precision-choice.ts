/**
 * Chooses a plan's precision on this machine: reads the CPU's bf16 flags,
 * times one training step of the planned network at the planned patch and
 * batch in fp32 and in bf16 (the planner's step timer, pipeline/step-timer.ts)
 * for training, and one inference pass (the sliding window's batch of
 * mirrored tiles, no gradients) in both for inference, and applies the rule
 * of data/precision.ts to each. They are decided apart because they differ:
 * on one AVX512-BF16 machine a hippocampus training step was 1.6x faster in
 * bf16 while prediction was slower.
 */
import * as torch from '@medseg/torch';
import { bf16Candidate, decidePrecision, type PrecisionDecision } from '../data/precision.ts';
import type { Plan, PrecisionChoice } from '../plan/types.ts';
import { timeInferencePass, timeTrainingStep } from './step-timer.ts';

export interface PrecisionChoiceOptions {
  /** The CPU's bf16 flags (default: read from /proc/cpuinfo). */
  cpuBf16?: string[];
  /** Seconds of one training step of the plan in a precision (default: timed here). */
  timeStep?: (plan: Plan, precision: 'fp32' | 'bf16') => Promise<number>;
  /** Seconds of one inference pass of the plan (batch `batch`) in a precision (default: timed here). */
  timePass?: (plan: Plan, batch: number, precision: 'fp32' | 'bf16') => Promise<number>;
}

async function timedStep(plan: Plan, precision: 'fp32' | 'bf16'): Promise<number> {
  return (await timeTrainingStep(plan.network, plan.patchSize, plan.batchSize, { ...plan.training, precision })).seconds;
}

async function timedPass(plan: Plan, batch: number, precision: 'fp32' | 'bf16'): Promise<number> {
  return (await timeInferencePass(plan.network, plan.patchSize, batch, precision)).seconds;
}

/** The tiles one inference pass holds: the mirrored copies of a tile, as many as the sliding window batches (infer/sliding-window.ts, 2^20 voxels). */
export function inferenceBatch(plan: Plan): number {
  const combos = plan.inference.mirror ? 2 ** plan.patchSize.length : 1;
  const voxels = plan.patchSize.reduce((a, b) => a * b, 1);
  return Math.max(1, Math.min(combos, Math.floor(2 ** 20 / voxels)));
}

const failure = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** The training precision decision for a plan on this machine. */
export async function decidePlanPrecision(plan: Plan, o: PrecisionChoiceOptions = {}): Promise<PrecisionDecision> {
  const cpuBf16 = o.cpuBf16 ?? torch.bf16Support().flags;
  const early = bf16Candidate(cpuBf16);
  if (early) return early;
  const time = o.timeStep ?? timedStep;
  const fp32 = await time(plan, 'fp32');
  let bf16: number;
  try {
    bf16 = await time(plan, 'bf16');
  } catch (e) {
    // An op without a bf16 kernel in this libtorch: the plan stays fp32 and says why.
    return { precision: 'fp32', choice: { reason: `fp32: a bf16 training step of this network failed (${failure(e)})`, cpuBf16, fp32StepSeconds: fp32 } };
  }
  return decidePrecision(cpuBf16, fp32, bf16);
}

/** The inference precision decision: the same rule on a timed inference pass. */
export async function decideInferencePrecision(
  plan: Plan,
  cpuBf16: string[],
  o: PrecisionChoiceOptions = {},
): Promise<{ precision: 'fp32' | 'bf16'; choice: NonNullable<PrecisionChoice['inference']> }> {
  const early = bf16Candidate(cpuBf16);
  if (early) return { precision: 'fp32', choice: { reason: early.choice.reason } };
  const time = o.timePass ?? timedPass;
  const batch = inferenceBatch(plan);
  const fp32 = await time(plan, batch, 'fp32');
  let bf16: number;
  try {
    bf16 = await time(plan, batch, 'bf16');
  } catch (e) {
    return { precision: 'fp32', choice: { reason: `fp32: a bf16 inference pass of this network failed (${failure(e)})`, fp32PassSeconds: fp32 } };
  }
  const d = decidePrecision(cpuBf16, fp32, bf16, `an inference pass of ${batch} tile${batch > 1 ? 's' : ''}`);
  return { precision: d.precision, choice: { reason: d.choice.reason, fp32PassSeconds: fp32, bf16PassSeconds: bf16 } };
}
