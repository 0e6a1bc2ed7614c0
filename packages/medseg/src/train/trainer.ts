/**
 * The training loop: epochs of a fixed number of iterations, validation on
 * full cases with the sliding window after every epoch, checkpoints (weights,
 * optimizer, schedule, RNG, epoch, best score) at intervals and on the best
 * validation Dice, early stopping, a time budget, a progress bar with ETA and
 * a JSONL metrics log. A killed run resumes from its last checkpoint: batches
 * are a pure function of (seed, epoch, iteration), so the resumed run repeats
 * exactly what the uninterrupted one would have done.
 */
import { existsSync, mkdirSync, readFileSync, appendFileSync } from 'node:fs';
import * as torch from '@medseg/torch';
import type { Tensor, nn } from '@medseg/torch';
import { median } from '../util/quantile.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { diceScores, predictCaseLabels } from '../infer/predict-case.ts';
import { foldFile } from '../plan/model-folder.ts';
import { readWeights, saveWeights } from '../plan/model-weights.ts';
import type { LossOptions } from './losses.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { makeOptimizer, trainingStep } from './step.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import type { TrainingSettings } from '../plan/types.ts';

const { optim } = torch;

/** The plan's training settings (plan/types.ts TrainingSettings) with what the trainer needs from the rest of the plan. */
export interface TrainerConfig extends Omit<TrainingSettings, 'loss'> {
  loss: LossOptions;
  epochs: number;
  iterationsPerEpoch: number;
  patchSize: number[];
  numClasses: number;
  /** Mirroring TTA during validation (slower; off by default during training). */
  validationMirror?: boolean;
  /**
   * Learning rate of the named weights relative to the rest (transfer
   * learning: a pretrained encoder at a tenth of the rate; 0 freezes them).
   * Each name maps to its scale; unnamed weights train at 1.
   */
  lrScales?: Map<string, number>;
}

export interface Batch {
  /** [B, C, ...patch] float32 */
  image: Tensor;
  /** [B, ...patch] integer labels */
  label: Tensor;
  /** [B', C, ...patch] unlabelled patches (semi-supervised training). */
  unlabelled?: Tensor;
}

export interface TrainingData {
  /** Must be deterministic in (epoch, iteration) for exact resume. */
  nextBatch(epoch: number, iteration: number): Batch | Promise<Batch>;
  validation: PreprocessedCase[];
  /** Called when training ends (stop worker threads). */
  close?(): void | Promise<void>;
}

export interface EpochLog {
  epoch: number;
  trainLoss: number;
  valDice: number[];
  valDiceMean: number;
  lr: number;
  /** Training iterations run: the plan's per-epoch count, fewer in an epoch the time budget cut short. */
  iterations: number;
  epochSeconds: number;
  best: boolean;
  /** Seconds the trainer waited for batches (a loader that keeps up gives ~0). */
  waitSeconds: number;
}

export interface TrainResult {
  epochsRun: number;
  bestEpoch: number;
  bestDice: number;
  stoppedBy: 'epochs' | 'early-stopping' | 'time-budget';
  minutes: number;
}

function meanFinite(a: number[]): number {
  const f = a.filter(Number.isFinite);
  return f.length ? f.reduce((s, v) => s + v, 0) / f.length : NaN;
}

/** A budgeted run's schedule counts millionths of the budget instead of iterations. */
const BUDGET_STEPS = 1_000_000;

/** The LR schedule: over all planned iterations, or over the time budget (see scheduleStep); warm-up the plan's share of either. */
function makeSchedule(opt: torch.optim.Optimizer, cfg: TrainerConfig): torch.optim.LRScheduler | null {
  const planned = cfg.epochs * cfg.iterationsPerEpoch;
  const total = cfg.timeBudgetMinutes > 0 ? BUDGET_STEPS : planned;
  const warmup = Math.round((total * cfg.warmupEpochs * cfg.iterationsPerEpoch) / planned);
  if (cfg.schedule === 'poly') return new optim.PolyLR(opt, total);
  if (cfg.schedule === 'cosine') return new optim.CosineWarmupLR(opt, warmup, total, cfg.lr * 0.01);
  return null;
}

/**
 * Where the LR schedule stands: the iterations done, or under a time budget
 * the elapsed share of the budget (in BUDGET_STEPS). A budgeted run trains
 * until the budget is spent, however many epochs that takes (the plan's
 * epochs are the planner's estimate from a timed step), and its LR reaches the
 * end of its decay exactly then, whatever the speed (validation, load, timing
 * noise in the plan). An epoch count re-fitted to the measured speed would
 * follow that noise, shrinking and growing back, and leave a run's last
 * epochs at the minimum LR; a cap at the plan's epochs would leave part of
 * the budget unused.
 */
export function scheduleStep(cfg: TrainerConfig, iterationsDone: number, elapsedSeconds: number): number {
  if (!(cfg.timeBudgetMinutes > 0)) return iterationsDone;
  return Math.floor(BUDGET_STEPS * Math.min(1, elapsedSeconds / (cfg.timeBudgetMinutes * 60)));
}

/**
 * Epochs the run is expected to have under its time budget, from the typical
 * epoch duration so far: shown in the progress label. Training itself stops
 * when the budget is spent, mid-epoch if need be (see scheduleStep).
 */
export function epochsWithinBudget(cfg: TrainerConfig, epochsDone: number, elapsedSeconds: number, lastEpochSeconds: number): number {
  if (!(cfg.timeBudgetMinutes > 0) || !(lastEpochSeconds > 0)) return cfg.epochs;
  const left = cfg.timeBudgetMinutes * 60 - elapsedSeconds;
  return Math.max(epochsDone, epochsDone + Math.ceil(left / lastEpochSeconds));
}

interface SavedState {
  epoch: number;
  bestDice: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  elapsedSeconds: number;
  optimizer: torch.optim.OptimizerState['meta'];
  schedule: Record<string, unknown> | null;
}

function saveCheckpoint(
  path: string,
  net: nn.Module,
  opt: torch.optim.Optimizer,
  state: SavedState,
  schedule: torch.optim.LRScheduler | null,
  extra?: TrainOptions['extraState'],
): void {
  torch.tidy(() => {
    const tensors = new Map<string, Tensor>();
    for (const [k, t] of net.stateDict()) tensors.set(`model.${k}`, t);
    for (const [k, t] of extra?.tensors() ?? []) tensors.set(`extra.${k}`, t);
    const os = opt.stateDict();
    for (const [k, t] of os.tensors) tensors.set(`optim.${k}`, t);
    tensors.set('rng.default', torch.getRngState());
    torch.saveSafetensors(path, tensors, { state: JSON.stringify({ ...state, optimizer: os.meta, schedule: schedule?.stateDict() ?? null }) });
  });
}

function loadCheckpoint(
  path: string,
  net: nn.Module,
  opt: torch.optim.Optimizer,
  schedule: torch.optim.LRScheduler | null,
  extra?: TrainOptions['extraState'],
): SavedState {
  const { tensors, metadata } = readWeights(path);
  try {
    const state = JSON.parse(metadata.state ?? '{}') as SavedState;
    const model = new Map<string, Tensor>();
    const optimTensors = new Map<string, Tensor>();
    const extraTensors = new Map<string, Tensor>();
    for (const [k, t] of tensors) {
      if (k.startsWith('model.')) model.set(k.slice(6), t);
      else if (k.startsWith('optim.')) optimTensors.set(k.slice(6), t);
      else if (k.startsWith('extra.')) extraTensors.set(k.slice(6), t);
    }
    net.loadStateDict(model);
    extra?.restore(extraTensors);
    opt.loadStateDict({ tensors: optimTensors, meta: state.optimizer });
    if (schedule && state.schedule) schedule.loadStateDict(state.schedule);
    const rng = tensors.get('rng.default');
    if (rng) torch.setRngState(rng);
    return state;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Keeps only the log lines of epochs <= lastEpoch (a resumed run redoes the rest). */
function truncateLog(path: string, lastEpoch: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && (JSON.parse(l) as EpochLog).epoch <= lastEpoch);
  writeFileAtomicSync(path, kept.map((l) => `${l}\n`).join(''));
}

export interface TrainOptions {
  resume?: boolean;
  progress?: ProgressReporter;
  stopAfterEpochs?: number;
  /** Runs after every optimizer step (pruning: puts the pruned weights back to zero, train/weight-masks.ts). */
  afterStep?: () => void;
  /** Metadata written into the best and final weights files besides the epoch (a pruned network's pruning record). */
  weightsMetadata?: Record<string, string>;
  /**
   * Replaces the supervised step (semi-supervised training, train/semi-step.ts):
   * gets the whole batch, the optimizer step's index over the run and the
   * share of the run done (iterations, or the time budget), returns the loss.
   */
  step?: (opt: torch.optim.Optimizer, batch: Batch, at: { step: number; progress: number }) => number;
  /** Tensors saved in the checkpoint beside the network's (an EMA teacher), and restored from it on resume. */
  extraState?: { tensors(): Map<string, Tensor>; restore(saved: Map<string, Tensor>): void };
}

export async function train(
  net: nn.Module & { forward(x: Tensor): Tensor | Tensor[] },
  cfg: TrainerConfig,
  data: TrainingData,
  outDir: string,
  o: TrainOptions = {},
): Promise<TrainResult> {
  mkdirSync(outDir, { recursive: true });
  const progress = o.progress ?? createProgress('auto');
  const opt = makeOptimizer(net, cfg, cfg.lrScales);
  const schedule = makeSchedule(opt, cfg);
  const ckptPath = foldFile(outDir, 'checkpoint');
  const logPath = foldFile(outDir, 'log');
  let state: SavedState = {
    epoch: -1,
    bestDice: -Infinity,
    bestEpoch: -1,
    epochsWithoutImprovement: 0,
    elapsedSeconds: 0,
    optimizer: { step: {}, groups: [] },
    schedule: null,
  };
  if (o.resume && existsSync(ckptPath)) {
    state = loadCheckpoint(ckptPath, net, opt, schedule, o.extraState);
    truncateLog(logPath, state.epoch);
  } else if (existsSync(logPath)) {
    writeFileAtomicSync(logPath, '');
  }
  const t0 = Date.now() - state.elapsedSeconds * 1000;
  let stoppedBy: TrainResult['stoppedBy'] = 'epochs';
  let epochsThisRun = 0;
  const runEpochSeconds: number[] = [];
  try {
    const budgeted = cfg.timeBudgetMinutes > 0;
    let expectedEpochs = cfg.epochs;
    let outOfTime = false;
    for (let epoch = state.epoch + 1; (budgeted || epoch < cfg.epochs) && !outOfTime; epoch++) {
      const te = Date.now();
      net.train();
      let lossSum = 0;
      let wait = 0;
      let iterations = 0;
      progress.start(cfg.iterationsPerEpoch, `epoch ${epoch + 1}/${expectedEpochs}`);
      for (let it = 0; it < cfg.iterationsPerEpoch; it++) {
        // Yield to the event loop every step. A loop whose awaits all resolve at
        // once (a prefetched batch) never lets Node run its deferred native
        // cleanup, and RSS grows without bound (fastest with small patches).
        await new Promise<void>((resolve) => setImmediate(resolve));
        const elapsed = (Date.now() - t0) / 1000;
        if (budgeted && elapsed >= cfg.timeBudgetMinutes * 60) {
          outOfTime = true;
          break;
        }
        const step = epoch * cfg.iterationsPerEpoch + it;
        schedule?.loadStateDict({ stepCount: scheduleStep(cfg, step, elapsed) });
        const tw = Date.now();
        const batch = await data.nextBatch(epoch, it);
        wait += (Date.now() - tw) / 1000;
        const progressShare = budgeted ? elapsed / (cfg.timeBudgetMinutes * 60) : step / (cfg.epochs * cfg.iterationsPerEpoch);
        const loss = o.step ? o.step(opt, batch, { step, progress: Math.min(1, progressShare) }) : trainingStep(net, opt, batch.image, batch.label, cfg);
        o.afterStep?.();
        batch.image.dispose();
        batch.label.dispose();
        batch.unlabelled?.dispose();
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch}, iteration ${it} (lower the learning rate?)`);
        lossSum += loss;
        iterations++;
        progress.update(it + 1, { loss: (lossSum / (it + 1)).toFixed(4), 'best dice': Number.isFinite(state.bestDice) ? state.bestDice.toFixed(4) : '-' });
      }
      progress.stop();
      if (iterations === 0) {
        stoppedBy = 'time-budget';
        break;
      }

      net.eval();
      const perCase = data.validation.map((c) =>
        diceScores(predictCaseLabels(net, c, cfg.patchSize, { mirror: cfg.validationMirror ?? false, precision: cfg.precision }), c.label!, cfg.numClasses),
      );
      const valDice = Array.from({ length: cfg.numClasses - 1 }, (_, k) => meanFinite(perCase.map((d) => d[k]!)));
      const valDiceMean = meanFinite(valDice);
      const best = valDiceMean > state.bestDice;
      if (best) {
        state.bestDice = valDiceMean;
        state.bestEpoch = epoch;
        state.epochsWithoutImprovement = 0;
        saveWeights(foldFile(outDir, 'best'), net.stateDict(), { ...o.weightsMetadata, epoch: String(epoch), valDice: String(valDiceMean) });
      } else {
        state.epochsWithoutImprovement++;
      }
      const entry: EpochLog = {
        epoch,
        trainLoss: lossSum / Math.max(1, iterations),
        valDice,
        valDiceMean,
        lr: opt.groups[0]!.lr,
        iterations,
        epochSeconds: (Date.now() - te) / 1000,
        best,
        waitSeconds: wait,
      };
      appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
      process.stderr.write(
        `epoch ${epoch + 1}/${expectedEpochs}: loss ${entry.trainLoss.toFixed(4)}  val Dice ${valDice.map((d) => d.toFixed(4)).join(' / ')}  (mean ${valDiceMean.toFixed(4)}${best ? ', best' : ''})  ${entry.epochSeconds.toFixed(1)}s\n`,
      );
      state.epoch = epoch;
      state.elapsedSeconds = (Date.now() - t0) / 1000;
      // The expected epoch count (for the label only) is re-judged after every
      // epoch; the median of this run's epochs after its first keeps the
      // start-up epoch and one noisy epoch from swinging it.
      runEpochSeconds.push(entry.epochSeconds);
      const typical = runEpochSeconds.length === 1 ? runEpochSeconds[0]! : median(runEpochSeconds.slice(1));
      expectedEpochs = epochsWithinBudget(cfg, epoch + 1, state.elapsedSeconds, typical);
      epochsThisRun++;
      const last = !budgeted && epoch === cfg.epochs - 1;
      const early = cfg.earlyStoppingPatience > 0 && state.epochsWithoutImprovement >= cfg.earlyStoppingPatience;
      outOfTime ||= budgeted && state.elapsedSeconds / 60 >= cfg.timeBudgetMinutes;
      if (last || early || outOfTime || (epoch + 1) % cfg.checkpointEvery === 0 || o.stopAfterEpochs === epochsThisRun) {
        saveCheckpoint(ckptPath, net, opt, state, schedule, o.extraState);
      }
      if (early) {
        stoppedBy = 'early-stopping';
        break;
      }
      if (outOfTime) {
        stoppedBy = 'time-budget';
        break;
      }
      if (o.stopAfterEpochs === epochsThisRun) break;
    }
    saveWeights(foldFile(outDir, 'final'), net.stateDict(), { ...o.weightsMetadata, epoch: String(state.epoch) });
  } finally {
    opt.dispose();
    await data.close?.();
  }
  // Wall time from the run's (resumed) start: the checkpointed elapsed time stops at the last validated epoch.
  return { epochsRun: state.epoch + 1, bestEpoch: state.bestEpoch, bestDice: state.bestDice, stoppedBy, minutes: (Date.now() - t0) / 60000 };
}
