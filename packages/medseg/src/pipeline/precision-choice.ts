/**
 * Chooses a plan's precision on this machine: reads the CPU's bf16 flags,
 * times one training step of the planned network at the planned patch and
 * batch in fp32 and in bf16 (the planner's step timer, pipeline/step-timer.ts)
 * and applies the rule of data/precision.ts to training and inference alike.
 */
import * as torch from '@medseg/torch';
import { bf16Candidate, decidePrecision, type PrecisionDecision } from '../data/precision.ts';
import type { Plan } from '../plan/types.ts';
import { timeTrainingStep } from './step-timer.ts';

export interface PrecisionChoiceOptions {
  /** The CPU's bf16 flags (default: read from /proc/cpuinfo). */
  cpuBf16?: string[];
  /** Seconds of one training step of the plan in a precision (default: timed here). */
  timeStep?: (plan: Plan, precision: 'fp32' | 'bf16') => Promise<number>;
}

async function timedStep(plan: Plan, precision: 'fp32' | 'bf16'): Promise<number> {
  return (await timeTrainingStep(plan.network, plan.patchSize, plan.batchSize, { ...plan.training, precision })).seconds;
}

/** The precision decision for a plan on this machine. */
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
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { precision: 'fp32', choice: { reason: `fp32: a bf16 training step of this network failed (${why})`, cpuBf16, fp32StepSeconds: fp32 } };
  }
  return decidePrecision(cpuBf16, fp32, bf16);
}

/** The plan with its training and inference precision chosen on this machine, and the reason recorded. */
export async function choosePrecision(plan: Plan, o: PrecisionChoiceOptions = {}): Promise<Plan> {
  const d = await decidePlanPrecision(plan, o);
  return {
    ...plan,
    training: { ...plan.training, precision: d.precision },
    inference: { ...plan.inference, precision: d.precision },
    precisionChoice: d.choice,
  };
}
