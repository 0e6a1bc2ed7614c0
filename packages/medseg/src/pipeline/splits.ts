/**
 * Cross-validation splits, saved with the model so every fold's validation
 * cases are known later (postprocessing decisions, ensembling, reports).
 * k-fold over the sorted case ids after a seeded shuffle, as nnU-Net's 5-fold
 * split (sklearn KFold, shuffle, seed 12345) is in spirit: the seed and the
 * procedure are recorded, the ids are written out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { MedsegIoError } from '../io/errors.ts';
import { modelFile } from '../plan/model-folder.ts';
import { Rng } from '../util/random.ts';

export interface Split {
  train: string[];
  val: string[];
}

export function kFoldSplits(ids: string[], folds = 5, seed = 12345): Split[] {
  if (folds < 2) throw new Error(`k-fold needs at least 2 folds, got ${folds}`);
  if (ids.length < folds) throw new Error(`${ids.length} cases cannot be split into ${folds} folds`);
  const shuffled = [...ids].sort();
  const rng = new Rng(seed);
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const splits: Split[] = [];
  for (let f = 0; f < folds; f++) {
    const val = shuffled.filter((_, i) => i % folds === f).sort();
    const valSet = new Set(val);
    splits.push({ train: shuffled.filter((id) => !valSet.has(id)).sort(), val });
  }
  return splits;
}

/** A fold's split from a model folder's splits.json (its training and validation case ids). */
export function readFoldSplit(modelDir: string, fold: number): Split {
  const path = modelFile(modelDir, 'splits');
  if (!existsSync(path)) throw new MedsegIoError('NOT_FOUND', `${modelDir} has no splits.json: its training and validation cases are unknown`, path);
  let splits: unknown;
  try {
    splits = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `cannot read the splits (${(e as Error).message})`, path);
  }
  if (!Array.isArray(splits)) throw new MedsegIoError('BAD_DATA', 'splits.json must be a list of {train, val} splits', path);
  const s = splits[fold] as Partial<Split> | undefined;
  if (!s) throw new MedsegIoError('BAD_DATA', `no fold ${fold} (${splits.length} folds)`, path);
  const ids = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!ids(s.train) || !ids(s.val)) throw new MedsegIoError('BAD_DATA', `fold ${fold} must list its train and val case ids`, path);
  return s as Split;
}
