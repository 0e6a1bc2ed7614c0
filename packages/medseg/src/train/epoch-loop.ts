/**
 * The epoch loop of the small trainers (classification, enhancement), on
 * trainer.ts's machinery: the optimizer's LR schedule over iterations or the
 * clock, epochs of `step` calls until the epoch count or the time budget,
 * validation after every epoch keeping the best epoch's weights, early
 * stopping, progress, a JSONL log, checkpoints, and exact resume from the
 * last one (the caller's batches must be a pure function of epoch and
 * iteration).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import type * as torch from '@medseg/torch';
import { foldFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { endOfEpoch, makeSchedule, resumeState, saveCheckpoint, scheduleStep, stopSignals, type CheckpointState, type ScheduleConfig } from './trainer.ts';

/** A run's state before its first epoch, in the form the small trainers (classification, enhancement) checkpoint. */
interface RunState extends CheckpointState {
  epoch: number;
  bestScore: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  elapsedSeconds: number;
  iterations: number;
}

/** A fresh RunState; `bestScore` is the worst score there is (-Infinity when higher is better, Infinity when lower is). */
function freshRunState(bestScore: number): RunState {
  return {
    epoch: -1,
    bestScore,
    bestEpoch: -1,
    epochsWithoutImprovement: 0,
    elapsedSeconds: 0,
    iterations: 0,
    optimizer: { step: {}, groups: [] },
    schedule: null,
  };
}

/**
 * The start of iteration `it` of `epoch` in a run that began (counting
 * resumed time) at `t0` ms: yields to the event loop (signals and progress
 * output get through), and either reports the time budget spent or moves the
 * LR schedule to where the run stands.
 */
async function startIteration(
  cfg: ScheduleConfig,
  schedule: torch.optim.LRScheduler | null,
  t0: number,
  epoch: number,
  it: number,
): Promise<'go' | 'out-of-time'> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  const elapsed = (Date.now() - t0) / 1000;
  if (cfg.timeBudgetMinutes > 0 && elapsed >= cfg.timeBudgetMinutes * 60) return 'out-of-time';
  schedule?.loadStateDict({ stepCount: scheduleStep(cfg, epoch * cfg.iterationsPerEpoch + it, elapsed) });
  return 'go';
}

/** The progress label of an epoch: its number of the planned epochs, or the minutes of the budget left. */
function epochLabel(cfg: ScheduleConfig, epoch: number, t0: number): string {
  return cfg.timeBudgetMinutes > 0
    ? `epoch ${epoch + 1} (${Math.max(0, cfg.timeBudgetMinutes - (Date.now() - t0) / 60000).toFixed(1)} min left)`
    : `epoch ${epoch + 1}/${cfg.epochs}`;
}

export interface EpochLoopConfig extends ScheduleConfig {
  /** Stop after this many epochs without a better validation score; 0 = never. */
  earlyStoppingPatience: number;
  checkpointEvery: number;
}

export interface EpochLoopHooks<V extends { score: number }> {
  /** One optimizer step on the batch of (epoch, iteration); returns its loss. */
  step(epoch: number, iteration: number): number;
  /** Validation after an epoch; `score` picks the best epoch. */
  validate(): V;
  /** Whether a higher validation score is better (else lower is). */
  higherIsBetter: boolean;
  /** The log entry's validation fields. */
  logFields(v: V): Record<string, number>;
  /** A line for stderr after each epoch (none when absent). */
  report?(entry: EpochLoopLog, v: V): string;
}

export interface EpochLoopLog {
  epoch: number;
  trainLoss: number;
  lr: number;
  iterations: number;
  epochSeconds: number;
  best: boolean;
  [field: string]: number | boolean;
}

export interface EpochLoopOptions {
  resume?: boolean;
  progress?: ProgressReporter;
  /** Stop (with a checkpoint) after this many epochs of this run: tests of resume. */
  stopAfterEpochs?: number;
  /** Metadata written into the best and final weights files. */
  weightsMetadata?: Record<string, string>;
}

export interface EpochLoopResult {
  epochsRun: number;
  bestEpoch: number;
  bestScore: number;
  stoppedBy: 'epochs' | 'early-stopping' | 'time-budget';
  minutes: number;
  iterations: number;
}

export async function runEpochs<V extends { score: number }>(
  net: torch.nn.Module,
  opt: torch.optim.Optimizer,
  cfg: EpochLoopConfig,
  outDir: string,
  hooks: EpochLoopHooks<V>,
  o: EpochLoopOptions = {},
): Promise<EpochLoopResult> {
  mkdirSync(outDir, { recursive: true });
  const progress = o.progress ?? createProgress('auto');
  const schedule = makeSchedule(opt, cfg);
  const ckptPath = foldFile(outDir, 'checkpoint');
  const logPath = foldFile(outDir, 'log');
  const state = resumeState(outDir, net, opt, schedule, o.resume ?? false, freshRunState(hooks.higherIsBetter ? -Infinity : Infinity));
  const t0 = Date.now() - state.elapsedSeconds * 1000;
  const budgeted = cfg.timeBudgetMinutes > 0;
  let stoppedBy: EpochLoopResult['stoppedBy'] = 'epochs';
  let epochsThisRun = 0;
  let outOfTime = false;
  for (let epoch = state.epoch + 1; (budgeted || epoch < cfg.epochs) && !outOfTime; epoch++) {
    const te = Date.now();
    net.train();
    let lossSum = 0;
    let iterations = 0;
    progress.start(cfg.iterationsPerEpoch, epochLabel(cfg, epoch, t0));
    for (let it = 0; it < cfg.iterationsPerEpoch; it++) {
      if ((await startIteration(cfg, schedule, t0, epoch, it)) === 'out-of-time') {
        outOfTime = true;
        break;
      }
      const loss = hooks.step(epoch, it);
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch}, iteration ${it} (lower the learning rate?)`);
      lossSum += loss;
      iterations++;
      progress.update(it + 1, { loss: (lossSum / iterations).toFixed(4), 'best val': Number.isFinite(state.bestScore) ? state.bestScore.toFixed(4) : '-' });
    }
    progress.stop();
    if (iterations === 0) {
      stoppedBy = 'time-budget';
      break;
    }
    state.iterations += iterations;
    const v = hooks.validate();
    const best = hooks.higherIsBetter ? v.score > state.bestScore : v.score < state.bestScore;
    if (best) {
      state.bestScore = v.score;
      state.bestEpoch = epoch;
      state.epochsWithoutImprovement = 0;
      saveWeights(foldFile(outDir, 'best'), net.stateDict(), { ...o.weightsMetadata, epoch: String(epoch), valScore: String(v.score) });
    } else {
      state.epochsWithoutImprovement++;
    }
    const entry: EpochLoopLog = {
      epoch,
      trainLoss: lossSum / iterations,
      ...hooks.logFields(v),
      lr: opt.groups[0]!.lr,
      iterations,
      epochSeconds: (Date.now() - te) / 1000,
      best,
    };
    appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
    if (hooks.report) process.stderr.write(`${hooks.report(entry, v)}\n`);
    state.epoch = epoch;
    state.elapsedSeconds = (Date.now() - t0) / 1000;
    epochsThisRun++;
    const stop = endOfEpoch(cfg, state, epochsThisRun, o.stopAfterEpochs, stopSignals(cfg, state, outOfTime), () =>
      saveCheckpoint(ckptPath, net, opt, state, schedule),
    );
    if (stop) {
      if (stop !== 'stopAfterEpochs') stoppedBy = stop;
      break;
    }
  }
  saveWeights(foldFile(outDir, 'final'), net.stateDict(), { ...o.weightsMetadata, epoch: String(state.epoch) });
  return {
    epochsRun: state.epoch + 1,
    bestEpoch: state.bestEpoch,
    bestScore: state.bestScore,
    stoppedBy,
    minutes: (Date.now() - t0) / 60000,
    iterations: state.iterations,
  };
}
