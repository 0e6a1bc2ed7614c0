/**
 * Fine-tuning a pruned network within a time budget: the trainer
 * (train/trainer.ts) continues training it on its model's own training cases
 * of one fold (the model folder's split), preprocessed with its plan as
 * `medseg train` preprocesses them, at the plan's optimizer, loss and
 * augmentation, the learning rate scaled down (default a tenth) and decayed
 * by the plan's schedule over the budget. A magnitude-pruned network keeps
 * its zeros (train/weight-masks.ts re-applies them after every step); a
 * structurally pruned one is simply the smaller network trained. The
 * weights of the epoch with the best validation Dice are kept; the pruned
 * weights before fine-tuning are scored the same way, for the record.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { readDataset } from '../data/dataset.ts';
import { loadPreprocessed, preprocessDataset } from '../data/preprocess.ts';
import type { PreprocessedCase } from '../data/types.ts';
import type { FineTuneRecord, PruneSummary } from '../deploy/prune.ts';
import { diceScores, predictCaseLabels } from '../infer/predict-case.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { foldFile } from '../plan/model-folder.ts';
import { loadWeightsInto, PRUNING_METADATA_KEY } from '../plan/model-weights.ts';
import type { Plan } from '../plan/types.ts';
import { train } from '../train/trainer.ts';
import { trainerConfig } from '../train/trainer-config.ts';
import { WeightMasks } from '../train/weight-masks.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import type { Split } from './splits.ts';
import { cacheDirFor, loaderData } from './train-model.ts';

/** Bad fine-tuning input: a budget that is not a positive number, a split naming cases the dataset lacks. */
export class FineTuneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FineTuneError';
  }
}

export interface FineTuneOptions {
  /** The dataset folder the model was trained on (dataset.json + imagesTr/labelsTr). */
  dataset: string;
  /** The fold's training and validation cases (the model folder's splits.json). */
  split: Split;
  /** Wall-time budget in minutes (> 0). */
  minutes: number;
  /** Learning rate relative to the plan's (default 0.1). */
  lrScale?: number;
  seed?: number;
  /** Folder for the trainer's checkpoints and log (default: a temporary folder, removed afterwards). */
  workDir?: string;
  progress?: ProgressReporter;
}

/** Mean over cases and classes of the Dice on the preprocessed grid, with the plan's sliding window and no TTA (as the trainer validates). */
export function meanValidationDice(net: SegmentationNetwork, cases: PreprocessedCase[], plan: Plan): number {
  const wasTraining = net.training;
  net.eval();
  try {
    const all = cases.flatMap((c) =>
      diceScores(predictCaseLabels(net, c, plan.patchSize, { mirror: false, precision: plan.inference.precision }), c.label!, plan.network.numClasses),
    );
    const finite = all.filter(Number.isFinite);
    return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN;
  } finally {
    net.train(wasTraining);
  }
}

/** Fine-tunes `net` (already pruned as `pruning` says) in place and returns the record. */
export async function fineTunePruned(net: SegmentationNetwork, plan: Plan, pruning: PruneSummary, o: FineTuneOptions): Promise<FineTuneRecord> {
  if (!(Number.isFinite(o.minutes) && o.minutes > 0)) throw new FineTuneError(`the fine-tuning budget must be a number of minutes > 0, got ${o.minutes}`);
  const lrScale = o.lrScale ?? 0.1;
  if (!(Number.isFinite(lrScale) && lrScale > 0)) throw new FineTuneError(`the fine-tuning learning-rate scale must be > 0, got ${lrScale}`);
  const ds = readDataset(o.dataset);
  const ids = new Set(ds.training.map((c) => c.id));
  const missing = [...o.split.train, ...o.split.val].filter((id) => !ids.has(id));
  if (missing.length)
    throw new FineTuneError(
      `the model's split names ${missing.length} case(s) ${ds.name} does not have (e.g. ${missing[0]}): give the dataset it was trained on`,
    );
  if (o.split.train.length === 0 || o.split.val.length === 0) throw new FineTuneError('fine-tuning needs training and validation cases in the split');
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'medseg-finetune-'));
  const masks =
    pruning.kind === 'magnitude'
      ? new WeightMasks(
          net,
          (pruning.layers ?? []).map((l) => l.name),
        )
      : null;
  try {
    const cacheDir = cacheDirFor(ds, plan, work);
    await preprocessDataset(ds, plan, cacheDir);
    const validation = await Promise.all(o.split.val.map((id) => loadPreprocessed(cacheDir, id)));
    const before = meanValidationDice(net, validation, plan);
    // A fine-tuning run keeps its best epoch's weights: no weight average.
    const cfg = {
      ...trainerConfig(plan),
      timeBudgetMinutes: o.minutes,
      lr: plan.training.lr * lrScale,
      warmupEpochs: 0,
      checkpointEvery: 1_000_000,
      weightAveraging: undefined,
    };
    const seed = o.seed ?? 12345;
    torch.manualSeed(seed);
    const data = loaderData(cacheDir, o.split.train, plan, seed, 1, validation);
    const result = await train(net, cfg, data, work, {
      progress: o.progress ?? createProgress('auto'),
      afterStep: masks ? () => masks.apply() : undefined,
      weightsMetadata: { [PRUNING_METADATA_KEY]: JSON.stringify(pruning) },
    });
    if (result.bestEpoch >= 0) loadWeightsInto(net, foldFile(work, 'best'));
    net.eval();
    const epochs = result.epochsRun;
    return {
      budgetMinutes: o.minutes,
      minutes: result.minutes,
      epochs,
      iterations: iterationsRun(work, epochs, plan),
      stoppedBy: result.stoppedBy,
      lr: cfg.lr,
      lrScale,
      bestEpoch: result.bestEpoch,
      validationDice: result.bestDice,
      validationDiceBefore: before,
      trainingCases: o.split.train.length,
      validationCases: validation.length,
      ...(masks ? { maskedZeros: masks.zeros() } : {}),
    };
  } finally {
    masks?.dispose();
    if (!o.workDir) rmSync(work, { recursive: true, force: true });
  }
}

/** Optimizer steps of the run, from the trainer's per-epoch log (the last epoch may be cut short by the budget). */
function iterationsRun(work: string, epochs: number, plan: Plan): number {
  try {
    const lines = readFileSync(foldFile(work, 'log'), 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    return lines.reduce((a, l) => a + (JSON.parse(l) as { iterations: number }).iterations, 0);
  } catch {
    return epochs * plan.iterationsPerEpoch;
  }
}
