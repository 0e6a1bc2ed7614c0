/**
 * The training loop: epochs of a fixed number of iterations, validation on
 * full cases with the sliding window after every epoch, checkpoints (weights,
 * optimizer, schedule, RNG, epoch, best score) at intervals and on the best
 * validation Dice, early stopping, a time budget, a progress bar with ETA and
 * a JSONL metrics log. A killed run resumes from its last checkpoint: batches
 * are a pure function of (seed, epoch, iteration), so the resumed run repeats
 * exactly what the uninterrupted one would have done. With the plan's weight
 * averaging, the last epochs' weights are averaged (weight-average.ts; the
 * mean is checkpointed too), saved and validated at the end.
 *
 * Data-parallel (o.distributed): every rank runs this loop on its own
 * batches with the gradients averaged across ranks (data-parallel.ts). Rank 0
 * alone validates and writes the log, checkpoints and weights; its decisions
 * (elapsed time, when to stop) are broadcast so every rank runs the same
 * iterations. On resume every rank reads the checkpoint from the same model
 * folder (one machine, or a shared filesystem) and checks that it starts
 * where rank 0 does.
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
import { agreeWithRankZero, DataParallel, dataParallelStep, meanOverRanks, type DataParallelOptions } from './data-parallel.ts';
import { dpTrainingStep, type DpSettings } from './dp-sgd.ts';
import type { ProximalTerm } from './proximal.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import type { TrainingSettings } from '../plan/types.ts';
import { WeightAverage } from './weight-average.ts';

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
  /** [B, K, ...patch] float one-hot skeleton-recall targets, when the plan's loss has the term. */
  skeletons?: Tensor;
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
  /** Optimizer steps this run took (a resumed run counts its own only): DP accounting composes over them. */
  steps: number;
  /** With weight averaging: the epochs averaged (the last `epochs` of the run) and the averaged weights' validation Dice. */
  averaged?: { epochs: number; valDice: number };
}

function meanFinite(a: number[]): number {
  const f = a.filter(Number.isFinite);
  return f.length ? f.reduce((s, v) => s + v, 0) / f.length : NaN;
}

/** A budgeted run's schedule counts millionths of the budget instead of iterations. */
const BUDGET_STEPS = 1_000_000;

/** What the LR schedule depends on. */
export type ScheduleConfig = Pick<
  TrainerConfig,
  'epochs' | 'iterationsPerEpoch' | 'timeBudgetMinutes' | 'warmupEpochs' | 'schedule' | 'lr' | 'weightAveraging'
>;

/**
 * The LR schedule: over all planned iterations, or over the time budget (see
 * scheduleStep); warm-up the plan's share of either. Stochastic weight
 * averaging (weightAveraging.lr) replaces the plan's decay, whichever it is,
 * with SWALR's: cosine from the peak to the held rate where averaging starts.
 */
export function makeSchedule(opt: torch.optim.Optimizer, cfg: ScheduleConfig): torch.optim.LRScheduler | null {
  const planned = cfg.epochs * cfg.iterationsPerEpoch;
  const total = cfg.timeBudgetMinutes > 0 ? BUDGET_STEPS : planned;
  const warmup = Math.round((total * cfg.warmupEpochs * cfg.iterationsPerEpoch) / planned);
  const wa = cfg.weightAveraging;
  if (wa?.lr !== undefined && cfg.schedule !== 'constant') return new optim.CosineWarmupLR(opt, warmup, Math.round(total * wa.from), cfg.lr * wa.lr);
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
export function scheduleStep(cfg: Pick<TrainerConfig, 'timeBudgetMinutes'>, iterationsDone: number, elapsedSeconds: number): number {
  if (!(cfg.timeBudgetMinutes > 0)) return iterationsDone;
  return Math.floor(BUDGET_STEPS * Math.min(1, elapsedSeconds / (cfg.timeBudgetMinutes * 60)));
}

/** The validation cases of an epoch's pass: at most `limit` of them, spread evenly over the list (all when absent). */
export function epochValidationCases<T>(cases: T[], limit: number | undefined): T[] {
  if (limit === undefined || limit >= cases.length) return cases;
  return Array.from({ length: limit }, (_, i) => cases[Math.floor((i * cases.length) / limit)]!);
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

/** What a checkpoint's JSON metadata holds besides the tensors (the classification trainer adds its own fields). */
export interface CheckpointState {
  optimizer: torch.optim.OptimizerState['meta'];
  schedule: Record<string, unknown> | null;
}

interface SavedState extends CheckpointState {
  epoch: number;
  bestDice: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  elapsedSeconds: number;
  /** Epochs in the weight average the checkpoint holds (weight averaging only). */
  averagedEpochs?: number;
}

/** Whether the weights at the end of this epoch join the average: the run is past the plan's share of its budget (or of its epochs). */
export function joinsAverage(cfg: Pick<TrainerConfig, 'weightAveraging' | 'timeBudgetMinutes' | 'epochs'>, epoch: number, elapsedSeconds: number): boolean {
  if (!cfg.weightAveraging) return false;
  const share = cfg.timeBudgetMinutes > 0 ? elapsedSeconds / (cfg.timeBudgetMinutes * 60) : (epoch + 1) / cfg.epochs;
  return share > cfg.weightAveraging.from;
}

/** Saves weights, optimizer state, RNG state and `state` (with the optimizer's and schedule's metadata) in one safetensors file. */
export function saveCheckpoint<S extends CheckpointState>(
  path: string,
  net: nn.Module,
  opt: torch.optim.Optimizer,
  state: S,
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

/** Restores what saveCheckpoint saved into net, opt and schedule, and returns the saved state. */
export function loadCheckpoint<S extends CheckpointState>(
  path: string,
  net: nn.Module,
  opt: torch.optim.Optimizer,
  schedule: torch.optim.LRScheduler | null,
  extra?: TrainOptions['extraState'],
): S {
  const { tensors, metadata } = readWeights(path);
  try {
    const state = JSON.parse(metadata.state ?? '{}') as S;
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
    .filter((l) => l.trim() && (JSON.parse(l) as { epoch: number }).epoch <= lastEpoch);
  writeFileAtomicSync(path, kept.map((l) => `${l}\n`).join(''));
}

/**
 * The state a run starts from: with `resume` and a checkpoint in `outDir`,
 * the checkpoint's (weights, optimizer, schedule and RNG restored; the log
 * cut back to its epoch); otherwise `fresh`, with the log emptied.
 */
export function resumeState<S extends CheckpointState & { epoch: number }>(
  outDir: string,
  net: nn.Module,
  opt: torch.optim.Optimizer,
  schedule: torch.optim.LRScheduler | null,
  resume: boolean,
  fresh: S,
  writesLog = true,
  extra?: TrainOptions['extraState'],
): S {
  const ckptPath = foldFile(outDir, 'checkpoint');
  const logPath = foldFile(outDir, 'log');
  if (resume && existsSync(ckptPath)) {
    const state = loadCheckpoint<S>(ckptPath, net, opt, schedule, extra);
    if (writesLog) truncateLog(logPath, state.epoch);
    return state;
  }
  if (writesLog && existsSync(logPath)) writeFileAtomicSync(logPath, '');
  return fresh;
}

/**
 * Why the run would stop after this validated epoch, as this process sees it:
 * early stopping (patience used up) or the time budget. Data-parallel ranks
 * replace these with rank 0's before endOfEpoch.
 */
export function stopSignals(
  cfg: Pick<TrainerConfig, 'earlyStoppingPatience' | 'timeBudgetMinutes'>,
  state: { epochsWithoutImprovement: number; elapsedSeconds: number },
  outOfTime: boolean,
): { early: boolean; timeUp: boolean } {
  const budgeted = cfg.timeBudgetMinutes > 0;
  return {
    early: cfg.earlyStoppingPatience > 0 && state.epochsWithoutImprovement >= cfg.earlyStoppingPatience,
    timeUp: outOfTime || (budgeted && state.elapsedSeconds / 60 >= cfg.timeBudgetMinutes),
  };
}

/**
 * The end of a validated epoch: saves the checkpoint when it is due (every
 * checkpointEvery epochs, and whenever the run stops) and says why the run
 * stops, if it does: early stopping, the time budget, or the caller's
 * stopAfterEpochs (null: go on).
 */
export function endOfEpoch(
  cfg: Pick<TrainerConfig, 'epochs' | 'timeBudgetMinutes' | 'checkpointEvery'>,
  state: { epoch: number },
  epochsThisRun: number,
  stopAfterEpochs: number | undefined,
  signals: { early: boolean; timeUp: boolean },
  saveCheckpointNow: () => void,
): 'early-stopping' | 'time-budget' | 'stopAfterEpochs' | null {
  const last = cfg.timeBudgetMinutes <= 0 && state.epoch === cfg.epochs - 1;
  const { early, timeUp } = signals;
  const pause = stopAfterEpochs === epochsThisRun;
  if (last || early || timeUp || pause || (state.epoch + 1) % cfg.checkpointEvery === 0) saveCheckpointNow();
  return early ? 'early-stopping' : timeUp ? 'time-budget' : pause ? 'stopAfterEpochs' : null;
}

export interface TrainOptions {
  resume?: boolean;
  progress?: ProgressReporter;
  stopAfterEpochs?: number;
  /** Runs after every optimizer step (pruning: puts the pruned weights back to zero, train/weight-masks.ts). */
  afterStep?: () => void;
  /** Metadata written into the best and final weights files besides the epoch (a pruned network's pruning record). */
  weightsMetadata?: Record<string, string>;
  /** Data-parallel training in this process group (this process is one of its ranks). */
  distributed?: { group: torch.ProcessGroup } & DataParallelOptions;
  /** FedProx: every step's gradient gets the proximal term's, pulling the weights toward the round's global model. */
  proximal?: ProximalTerm;
  /** DP-SGD: every step clips each example's gradient and adds Gaussian noise (train/dp-sgd.ts) instead of the plain step. */
  dp?: DpSettings;
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
  const group = o.distributed?.group ?? null;
  if (group && (o.dp || o.proximal || o.step)) {
    throw new Error('data-parallel training does not combine with DP-SGD, FedProx or semi-supervised steps: those train in one process');
  }
  if (o.step && (o.dp || o.proximal)) throw new Error('a replaced (semi-supervised) step does not combine with DP-SGD or FedProx');
  const writer = !group || group.rank === 0;
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
  // The weight average rides in the checkpoint beside the caller's extra state (an EMA teacher), under its own prefix.
  const averaging = cfg.weightAveraging && writer ? new WeightAverage() : null;
  const extraState: TrainOptions['extraState'] = averaging
    ? {
        tensors: () => new Map([...(o.extraState?.tensors() ?? []), ...averaging.tensors('average.')]),
        restore: (saved) => {
          o.extraState?.restore(saved);
          averaging.restore(saved, 'average.');
        },
      }
    : o.extraState;
  state = resumeState(outDir, net, opt, schedule, o.resume ?? false, state, writer, extraState);
  if (averaging) averaging.count = averaging.empty ? 0 : (state.averagedEpochs ?? 0);
  let dp: DataParallel | null = null;
  if (group) {
    const [epoch] = await agreeWithRankZero(group, [state.epoch]);
    if (epoch !== state.epoch) {
      opt.dispose();
      throw new Error(
        `rank ${group.rank} would start after epoch ${state.epoch} but rank 0 after epoch ${epoch}: ` +
          `every rank resumes from the same checkpoint (${ckptPath}; across machines the model folder must be on a shared filesystem)`,
      );
    }
    dp = await DataParallel.create(group, net, o.distributed);
  }
  const t0 = Date.now() - state.elapsedSeconds * 1000;
  let stoppedBy: TrainResult['stoppedBy'] = 'epochs';
  let epochsThisRun = 0;
  let steps = 0;
  const proximal = o.proximal;
  const afterBackward = proximal ? () => proximal.addGradient() : undefined;
  const runEpochSeconds: number[] = [];
  /** Mean Dice per foreground class of the network as it is, on the epoch's validation cases. */
  const validate = (): number[] => {
    net.eval();
    const perCase = epochValidationCases(data.validation, cfg.epochValidationCases).map((c) =>
      diceScores(predictCaseLabels(net, c, cfg.patchSize, { mirror: cfg.validationMirror ?? false, precision: cfg.precision }), c.label!, cfg.numClasses),
    );
    return Array.from({ length: cfg.numClasses - 1 }, (_, k) => meanFinite(perCase.map((d) => d[k]!)));
  };
  let averaged: TrainResult['averaged'];
  let paused = false;
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
        let elapsed = (Date.now() - t0) / 1000;
        if (dp) [elapsed] = (await dp.agree([elapsed])) as [number];
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
        const loss = dp
          ? await dataParallelStep(net, opt, dp, batch.image, batch.label, cfg, batch.skeletons)
          : o.step
            ? o.step(opt, batch, { step, progress: Math.min(1, progressShare) })
            : o.dp
              ? dpTrainingStep(net, opt, batch.image, batch.label, cfg, o.dp, afterBackward).loss
              : trainingStep(net, opt, batch.image, batch.label, cfg, { afterBackward, skeletons: batch.skeletons });
        steps++;
        o.afterStep?.();
        batch.image.dispose();
        batch.label.dispose();
        batch.unlabelled?.dispose();
        batch.skeletons?.dispose();
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
      if (group) lossSum = (await meanOverRanks(group, lossSum / iterations)) * iterations;

      let best = false;
      if (writer) {
        const valDice = validate();
        const valDiceMean = meanFinite(valDice);
        best = valDiceMean > state.bestDice;
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
          `epoch ${epoch + 1}/${expectedEpochs}: loss ${entry.trainLoss.toFixed(4)}  ` +
            (data.validation.length
              ? `val Dice ${valDice.map((d) => d.toFixed(4)).join(' / ')}  (mean ${valDiceMean.toFixed(4)}${best ? ', best' : ''})  `
              : '(no validation cases)  ') +
            `${entry.epochSeconds.toFixed(1)}s\n`,
        );
      }
      const epochSeconds = (Date.now() - te) / 1000;
      state.epoch = epoch;
      state.elapsedSeconds = (Date.now() - t0) / 1000;
      // The expected epoch count (for the label only) is re-judged after every
      // epoch; the median of this run's epochs after its first keeps the
      // start-up epoch and one noisy epoch from swinging it.
      runEpochSeconds.push(epochSeconds);
      const typical = runEpochSeconds.length === 1 ? runEpochSeconds[0]! : median(runEpochSeconds.slice(1));
      expectedEpochs = epochsWithinBudget(cfg, epoch + 1, state.elapsedSeconds, typical);
      epochsThisRun++;
      if (averaging && joinsAverage(cfg, epoch, state.elapsedSeconds)) {
        averaging.add(net);
        state.averagedEpochs = averaging.count;
      }
      const signals = stopSignals(cfg, state, outOfTime);
      if (group) {
        // Rank 0 validated and kept the time: every rank stops when it does.
        const [e, t] = await agreeWithRankZero(group, [signals.early ? 1 : 0, signals.timeUp ? 1 : 0]);
        signals.early = e === 1;
        signals.timeUp = t === 1;
      }
      const stop = endOfEpoch(cfg, state, epochsThisRun, o.stopAfterEpochs, signals, () => {
        if (writer) saveCheckpoint(ckptPath, net, opt, state, schedule, extraState);
      });
      if (stop) {
        if (stop !== 'stopAfterEpochs') stoppedBy = stop;
        paused = stop === 'stopAfterEpochs';
        break;
      }
    }
    if (writer) saveWeights(foldFile(outDir, 'final'), net.stateDict(), { ...o.weightsMetadata, epoch: String(state.epoch) });
    // A paused run (stopAfterEpochs) leaves the average in its checkpoint for the resumed one.
    if (averaging?.count && !paused) averaged = validateAverage(net, averaging, validate, outDir, state, o.weightsMetadata);
  } finally {
    averaging?.dispose();
    dp?.dispose();
    opt.dispose();
    await data.close?.();
  }
  // Wall time from the run's (resumed) start: the checkpointed elapsed time stops at the last validated epoch.
  return {
    epochsRun: state.epoch + 1,
    bestEpoch: state.bestEpoch,
    bestDice: state.bestDice,
    stoppedBy,
    minutes: (Date.now() - t0) / 60000,
    steps,
    ...(averaged ? { averaged } : {}),
  };
}

/**
 * Saves the averaged weights as the fold's averaged weights and validates
 * them as the epochs were validated; the network keeps its final weights.
 */
function validateAverage(
  net: nn.Module,
  averaging: WeightAverage,
  validate: () => number[],
  outDir: string,
  state: SavedState,
  metadata: Record<string, string> | undefined,
): NonNullable<TrainResult['averaged']> {
  const final = torch.tidy(() => new Map([...net.stateDict()].map(([k, t]) => [k, torch.keep(t.detach().clone())])));
  try {
    net.loadStateDict(averaging.stateDict());
    const valDice = meanFinite(validate());
    const epochs = averaging.count;
    saveWeights(foldFile(outDir, 'averaged'), net.stateDict(), {
      ...metadata,
      epoch: String(state.epoch),
      averagedEpochs: String(epochs),
      valDice: String(valDice),
    });
    process.stderr.write(
      `weights averaged over the last ${epochs} epochs: val Dice ${valDice.toFixed(4)} (best epoch ${state.bestEpoch + 1}: ${state.bestDice.toFixed(4)})\n`,
    );
    return { epochs, valDice };
  } finally {
    net.loadStateDict(final);
    for (const t of final.values()) t.dispose();
  }
}
