/**
 * Cross-validation splits, saved with the model so every fold's validation
 * cases are known later (postprocessing decisions, ensembling, reports).
 * k-fold over the sorted case ids after a seeded shuffle, as nnU-Net's 5-fold
 * split (sklearn KFold, shuffle, seed 12345) is in spirit: the seed and the
 * procedure are recorded, the ids are written out.
 */
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
