/**
 * The trained model folder: the one module that knows its file names and
 * reads or writes its parts. Training writes it, prediction reads it.
 *
 *   plan.json  fingerprint.json  splits.json  postprocessing.json  calibration.json
 *   model-card.md  model-card.json  validation.csv  preprocessed/
 *   fold_<k>/ model_best.safetensors  model_final.safetensors
 *             [model_averaged.safetensors]  checkpoint_latest.safetensors  log.jsonl
 *
 * Weights files are read and written through model-weights.ts. This module
 * needs no engine, so commands that only read cards or postprocessing load
 * without libtorch.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';

/** Files at the top of a model folder. */
export const MODEL_FILES = {
  plan: 'plan.json',
  fingerprint: 'fingerprint.json',
  splits: 'splits.json',
  postprocessing: 'postprocessing.json',
  /** Temperature, calibration error and the triage rule, fitted on the validation cases. */
  calibration: 'calibration.json',
  modelCardMarkdown: 'model-card.md',
  modelCardJson: 'model-card.json',
  validation: 'validation.csv',
  /** The preprocessing cache of the training data. */
  preprocessed: 'preprocessed',
} as const;

/** Files inside a fold_<k>/ folder. */
export const FOLD_FILES = {
  best: 'model_best.safetensors',
  final: 'model_final.safetensors',
  /** The mean of the last epochs' weights (a plan with training.weightAveraging). */
  averaged: 'model_averaged.safetensors',
  checkpoint: 'checkpoint_latest.safetensors',
  log: 'log.jsonl',
} as const;

export type ModelFile = keyof typeof MODEL_FILES;
export type FoldFile = keyof typeof FOLD_FILES;
/** Which weights of a fold to use: those of the best validation epoch, of the last epoch, or the last epochs' average. */
export type CheckpointChoice = 'best' | 'final' | 'averaged';

export function modelFile(modelDir: string, file: ModelFile): string {
  return join(modelDir, MODEL_FILES[file]);
}

/** The model card's Markdown and JSON files of a model folder. */
export function modelCardPaths(modelDir: string): { markdown: string; json: string } {
  return { markdown: modelFile(modelDir, 'modelCardMarkdown'), json: modelFile(modelDir, 'modelCardJson') };
}

export function foldDir(modelDir: string, fold: number): string {
  return join(modelDir, `fold_${fold}`);
}

export function foldFile(foldPath: string, file: FoldFile): string {
  return join(foldPath, FOLD_FILES[file]);
}

/** The fold_<k> folders of a model folder, by fold number. */
export function listFolds(modelDir: string): { fold: number; dir: string }[] {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'model folder does not exist', modelDir);
  return readdirSync(modelDir)
    .filter((f) => /^fold_\d+$/.test(f) && statSync(join(modelDir, f)).isDirectory())
    .map((f) => ({ fold: Number(f.slice(5)), dir: join(modelDir, f) }))
    .sort((a, b) => a.fold - b.fold);
}

/**
 * The weights file of a fold. An explicit choice must exist (else NOT_FOUND);
 * without one, the best weights, else the final ones. Null when the fold has
 * no weights at all (a fold not trained yet).
 */
export function weightsFile(foldPath: string, choice?: CheckpointChoice): string | null {
  const best = foldFile(foldPath, 'best');
  const final = foldFile(foldPath, 'final');
  if (!existsSync(best) && !existsSync(final)) return null;
  if (choice) {
    const wanted = foldFile(foldPath, choice);
    if (!existsSync(wanted))
      throw new MedsegIoError(
        'NOT_FOUND',
        `this fold has no ${choice} weights (${FOLD_FILES[choice]}); use --checkpoint ${choice === 'best' ? 'final' : 'best'}`,
        wanted,
      );
    return wanted;
  }
  return existsSync(best) ? best : final;
}

/** The postprocessing cross-validation chose: classes whose largest connected component alone is kept. */
export interface PostprocessingChoice {
  keepLargestComponent: number[];
  /** Per class, the per-case validation Dice without and with it. */
  evidence?: Record<string, { without: number[]; with: number[] }>;
}

/** postprocessing.json of a model folder; none when the folder has no such file. */
export function readPostprocessing(modelDir: string): PostprocessingChoice {
  const path = modelFile(modelDir, 'postprocessing');
  if (!existsSync(path)) return { keepLargestComponent: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `cannot read the postprocessing choice (${(e as Error).message})`, path);
  }
  const keep = (raw as Partial<PostprocessingChoice> | null)?.keepLargestComponent;
  if (!Array.isArray(keep) || !keep.every((k) => Number.isInteger(k) && k > 0)) {
    throw new MedsegIoError('BAD_DATA', 'keepLargestComponent must be a list of class numbers (> 0)', path);
  }
  return raw as PostprocessingChoice;
}

export function writePostprocessing(modelDir: string, choice: PostprocessingChoice): void {
  writeJsonAtomicSync(modelFile(modelDir, 'postprocessing'), choice);
}

/**
 * What the folds' validation cases taught about the model's confidence
 * (pipeline/train-model.ts writes it, prediction reads it): the temperature
 * that calibrates its probabilities, the calibration error before and after,
 * and the rule that flags a case for review by its uncertainty score.
 */
export interface ModelCalibration {
  /** Logits are divided by this before the softmax (fitted by minimising the NLL). */
  temperature: number;
  /** Voxels the temperature was fitted on (a uniform subsample of the validation cases). */
  voxels: number;
  ece: { before: number; after: number };
  nll: { before: number; after: number };
  /**
   * The case score the triage rule thresholds: mean normalised predictive
   * entropy over the predicted foreground and its uncertain rim, of one
   * fold's members at the fitted temperature.
   */
  score: 'meanEntropy';
  /** Members per case the scores came from (the plan's TTA passes). */
  members: number;
  /** Where those members came from ('tta', or none for a plan without TTA); absent in folders calibrated before it was recorded. */
  sources?: string[];
  /** Each validation case's fold, mean foreground Dice and triage score. */
  cases?: ValidationCaseConfidence[];
  /** Flag a case for review when its score reaches the threshold; absent when the validation cases could not set one. */
  triage?: {
    threshold: number;
    failureDice: number;
    capturedFailures: number;
    flaggedFraction: number;
    auroc: number | null;
    cases: number;
    failures: number;
  };
}

export interface ValidationCaseConfidence {
  id: string;
  fold: number;
  /** Mean foreground Dice (1 when no foreground class is in the case or its prediction). */
  dice: number;
  score: number;
}

/** calibration.json of a model folder, or null for a folder trained before it existed. */
export function readCalibration(modelDir: string): ModelCalibration | null {
  const path = modelFile(modelDir, 'calibration');
  if (!existsSync(path)) return null;
  let raw: Partial<ModelCalibration> | null;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<ModelCalibration> | null;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `cannot read the calibration (${(e as Error).message})`, path);
  }
  const T = raw?.temperature;
  if (typeof T !== 'number' || !(T > 0) || !Number.isFinite(T)) throw new MedsegIoError('BAD_DATA', 'temperature must be a positive number', path);
  const th = raw?.triage?.threshold;
  if (raw?.triage !== undefined && (typeof th !== 'number' || !Number.isFinite(th)))
    throw new MedsegIoError('BAD_DATA', 'triage.threshold must be a number', path);
  return raw as ModelCalibration;
}

export function writeCalibration(modelDir: string, c: ModelCalibration): void {
  writeJsonAtomicSync(modelFile(modelDir, 'calibration'), c);
}
