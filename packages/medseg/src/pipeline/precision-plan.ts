/**
 * A budgeted plan sized for the precision it trains in. The planner
 * (data/planner.ts) chooses patch, width, batch and iterations from timed
 * training steps; when training runs in bf16 those steps are faster, so a plan
 * sized with fp32 steps would leave a bf16 run's extra iterations to chance
 * (the trainer stretches the epochs) instead of spending them by the planner's
 * rule (patch context first, then width, then batch, at the target
 * iterations). So: plan with fp32 steps, decide the training precision on that
 * plan, and when it is bf16 plan again with bf16 steps; then decide the
 * inference precision on the final network and patch.
 */
import type { Fingerprint } from '../data/fingerprint.ts';
import { makePlan, type PlanOptions, type StepTimer } from '../data/planner.ts';
import type { Plan, Precision } from '../plan/types.ts';
import { decideInferencePrecision, decidePlanPrecision, type PrecisionChoiceOptions } from './precision-choice.ts';
import * as torch from '@medseg/torch';

export type PrecisionRequest = Precision | 'auto';

export interface PrecisionPlanOptions {
  /** The planner's options; its stepTimer times fp32 steps unless told the precision in its training settings. */
  planner: PlanOptions;
  choice: PrecisionRequest;
  /** Seconds of one inference pass (network, patch, batch, precision). */
  timePass: (network: Plan['network'], patchSize: number[], batchSize: number, precision: Precision) => Promise<number>;
  /** The CPU's bf16 flags (default: read from /proc/cpuinfo). */
  cpuBf16?: string[];
  log?: (line: string) => void;
}

const UNTIMED = 'fp32: not measured (a plan without a time budget is not timed)';

/** The step timer timing every candidate in `precision`. */
function timerIn(stepTimer: StepTimer, precision: Precision): StepTimer {
  return (network, patchSize, batchSize, training) => stepTimer(network, patchSize, batchSize, { ...training, precision });
}

const iterations = (p: Plan) => p.epochs * p.iterationsPerEpoch;
const shape = (p: Plan) => `patch ${p.patchSize.join('x')}, batch ${p.batchSize}, base width ${p.network.features[0]}, ${iterations(p)} iterations`;

export async function planWithPrecision(fingerprint: Fingerprint, o: PrecisionPlanOptions): Promise<Plan> {
  const log = o.log ?? (() => {});
  const fp32Plan = await makePlan(fingerprint, o.planner);
  const stepTimer = o.planner.stepTimer;
  if (!fp32Plan.budget || !stepTimer) {
    const precision = o.choice === 'auto' ? 'fp32' : o.choice;
    const reason = o.choice === 'auto' ? UNTIMED : `${o.choice}: chosen when planning`;
    return { ...fp32Plan, training: { ...fp32Plan.training, precision }, inference: { ...fp32Plan.inference, precision }, precisionChoice: { reason } };
  }
  const cpuBf16 = o.cpuBf16 ?? torch.bf16Support().flags;
  const timing: PrecisionChoiceOptions = {
    cpuBf16,
    timeStep: async (p, precision) => stepTimer(p.network, p.patchSize, p.batchSize, { ...p.training, precision }),
    timePass: async (p, batch, precision) => o.timePass(p.network, p.patchSize, batch, precision),
  };
  let training: Precision;
  let choice: Plan['precisionChoice'];
  if (o.choice === 'auto') {
    log('timing a training step in fp32 and bf16 ...');
    const d = await decidePlanPrecision(fp32Plan, timing);
    training = d.precision;
    choice = d.choice;
  } else {
    training = o.choice;
    choice = { reason: `${o.choice}: chosen when planning` };
  }
  log(`training: ${choice.reason}`);
  let plan = fp32Plan;
  if (training === 'bf16') {
    log('sizing the plan with bf16 training steps ...');
    plan = await makePlan(fingerprint, { ...o.planner, stepTimer: timerIn(stepTimer, 'bf16') });
    const sized = `the plan is sized with bf16 steps of ${(plan.budget!.stepSeconds * 1000).toFixed(0)} ms: ${shape(plan)} (sized with fp32 steps: ${shape(fp32Plan)})`;
    choice = { ...choice, reason: `${choice.reason}; ${sized}` };
    log(sized);
  }
  let inference: Precision;
  if (o.choice === 'auto') {
    log('timing an inference pass in fp32 and bf16 ...');
    const inf = await decideInferencePrecision(plan, cpuBf16, timing);
    inference = inf.precision;
    choice = { ...choice, inference: inf.choice };
    log(`inference: ${inf.choice.reason}`);
  } else {
    inference = o.choice;
  }
  return { ...plan, training: { ...plan.training, precision: training }, inference: { ...plan.inference, precision: inference }, precisionChoice: choice };
}
