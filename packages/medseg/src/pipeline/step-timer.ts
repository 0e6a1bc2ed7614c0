/**
 * Times the training step (train/step.ts) of a network the planner is
 * considering, with the optimizer, loss and clipping the plan will train
 * with, on random data at the candidate's batch and patch size.
 *
 * Why: the planner's throughput model counts convolution MACs only. On CPU at
 * the narrow widths a time budget forces (8-16 channels), instance norm,
 * activations, transposed convolutions, the loss heads and the optimizer are
 * memory-bound and add as much again. The planner calibrates its model
 * against this measurement (data/planner.ts).
 *
 * The time is the median of several repetitions on an otherwise idle machine
 * (util/robust-timing.ts): another process's burst of load during planning
 * must not shrink the plan. rememberedStepTimer measures each candidate once
 * per machine and engine (util/machine-timings.ts), so the same flags plan
 * the same on later runs. timeInferencePass times a forward pass the same
 * way, for the choice of inference precision (pipeline/precision-choice.ts).
 */
import * as torch from '@medseg/torch';
import type { StepTimer } from '../data/planner.ts';
import type { NetworkConfig, Precision, TrainingSettings } from '../plan/types.ts';
import { createNetwork } from '../models/registry.ts';
import { skeletonTargets } from '../train/losses.ts';
import { forwardIn, makeOptimizer, trainingStep } from '../train/step.ts';
import type { MachineTimings } from '../util/machine-timings.ts';
import { timeRobustly, type RobustTimingOptions } from '../util/robust-timing.ts';

/** The training settings a timed step depends on (and a remembered time is keyed by). */
export const STEP_TIMER_TRAINING_FIELDS = ['optimizer', 'lr', 'weightDecay', 'momentum', 'loss', 'gradClip'] as const;
export type StepTimerTraining = Pick<TrainingSettings, (typeof STEP_TIMER_TRAINING_FIELDS)[number]>;

export interface StepTiming {
  /** Seconds per step: the median of the clean repetitions. */
  seconds: number;
  /** Seconds per step of every timed repetition, loaded ones included. */
  steps: number[];
  /** Steps run in each timed repetition. */
  stepsPerRepetition: number;
  /** The loss of every step run, warm-up included, in order. */
  losses: number[];
  /** Steps re-timed because other processes loaded the machine. */
  loaded: number;
  /** Whether `seconds` comes from a repetition on an otherwise idle machine. */
  clean: boolean;
}

export async function timeTrainingStep(
  network: NetworkConfig,
  patchSize: number[],
  batchSize: number,
  training: StepTimerTraining & { precision?: Precision },
  o: RobustTimingOptions = {},
): Promise<StepTiming> {
  const net = createNetwork(network);
  const opt = makeOptimizer(net, training);
  const x = torch.keep(torch.randn([batchSize, network.inChannels, ...patchSize]));
  const y = torch.keep(torch.randint(0, network.numClasses, [batchSize, ...patchSize]));
  // The loader's workers make the skeleton-recall targets beside training (data/batch.ts): the step gets them made.
  const skeletons = training.loss.skeletonRecall ? torch.keep(skeletonTargets(y, network.numClasses)) : undefined;
  const losses: number[] = [];
  try {
    net.train();
    const t = await timeRobustly(() => void losses.push(trainingStep(net, opt, x, y, training, { skeletons })), { warmup: 1, reps: 3, ...o });
    return { seconds: t.seconds, steps: t.samples, stepsPerRepetition: t.stepsPerRepetition, losses, loaded: t.loaded, clean: t.clean };
  } finally {
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
    skeletons?.dispose();
  }
}

/**
 * Seconds of one inference pass of the network: a batch of `batchSize`
 * patches (the sliding window's mirrored copies of a tile) forward, without
 * gradients, in eval mode, in the precision asked. The time is the median of
 * several repetitions on an otherwise idle machine, as for training steps.
 */
export async function timeInferencePass(
  network: NetworkConfig,
  patchSize: number[],
  batchSize: number,
  precision: Precision,
  o: RobustTimingOptions = {},
): Promise<{ seconds: number; clean: boolean }> {
  const net = createNetwork(network);
  const x = torch.keep(torch.randn([batchSize, network.inChannels, ...patchSize]));
  try {
    net.eval();
    const t = await timeRobustly(() => torch.tidy(() => torch.noGrad(() => void forwardIn(precision, net, x))), { warmup: 1, reps: 3, ...o });
    return { seconds: t.seconds, clean: t.clean };
  } finally {
    net.dispose();
    x.dispose();
  }
}

/** What a timed inference pass depends on. */
export function passTimingKey(network: NetworkConfig, patchSize: number[], batchSize: number, precision: Precision): string {
  return `pass ${JSON.stringify({ network, patchSize, batchSize, precision, threads: torch.getNumThreads() })}`;
}

/** The inference pass timer, each pass measured once per machine and engine and remembered in `timings`. */
export function rememberedPassTimer(
  timings: MachineTimings,
): (network: NetworkConfig, patchSize: number[], batchSize: number, precision: Precision) => Promise<number> {
  return async (network, patchSize, batchSize, precision) =>
    (
      await timings.remember(passTimingKey(network, patchSize, batchSize, precision), () =>
        timeInferencePass(network, patchSize, batchSize, precision).then((t) => ({ value: t.seconds, clean: t.clean })),
      )
    ).value;
}

/** The planner's step timer (PlanOptions.stepTimer). */
export const timedStepSeconds: StepTimer = async (network, patchSize, batchSize, training) =>
  (await timeTrainingStep(network, patchSize, batchSize, training)).seconds;

/** What a timed step depends on: network, patch, batch, the training settings it trains with and the engine's threads. */
export function stepTimingKey(network: NetworkConfig, patchSize: number[], batchSize: number, training: StepTimerTraining & { precision?: Precision }): string {
  const t = Object.fromEntries(STEP_TIMER_TRAINING_FIELDS.map((f) => [f, training[f]]));
  // A bf16 step is remembered apart; an fp32 step keeps the key it had before plans had a precision.
  const precision = training.precision === 'bf16' ? { precision: 'bf16' } : {};
  return `step ${JSON.stringify({ network, patchSize, batchSize, training: { ...t, ...precision }, threads: torch.getNumThreads() })}`;
}

/** The planner's step timer, measuring each candidate once per machine and engine and remembering the time in `timings`. */
export function rememberedStepTimer(timings: MachineTimings): StepTimer {
  return async (network, patchSize, batchSize, training) =>
    (
      await timings.remember(stepTimingKey(network, patchSize, batchSize, training), async () => {
        const t = await timeTrainingStep(network, patchSize, batchSize, training);
        return { value: t.seconds, clean: t.clean };
      })
    ).value;
}
