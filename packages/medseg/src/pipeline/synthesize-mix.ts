/**
 * Synthetic pairs in training (`medseg train --synthetic <dir>
 * --synthetic-ratio r`): the folder must be one `medseg synthesize` wrote
 * (dataset.json with a "synthetic" record) for the same channels and labels,
 * and a training batch draws a synthetic case with probability r. The loader
 * draws cases uniformly from its id list, so the ratio is realised by
 * repeating ids: real cases a times and synthetic ones b times (a, b <= 6)
 * with b nS / (a nR + b nS) closest to r; the realised ratio is recorded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { MedsegIoError } from '../io/errors.ts';

export interface SyntheticMix {
  ids: string[];
  /** The share of synthetic draws the id list gives. */
  realisedRatio: number;
}

/** The training ids for a synthetic share `ratio` in [0, 1] (1 = synthetic only). */
export function mixTrainingIds(real: string[], synthetic: string[], ratio: number): SyntheticMix {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`the synthetic ratio must be in [0, 1], got ${ratio}`);
  if (ratio === 0 || synthetic.length === 0) return { ids: [...real], realisedRatio: 0 };
  if (ratio === 1 || real.length === 0) return { ids: [...synthetic], realisedRatio: 1 };
  let best = { a: 1, b: 1, err: Infinity, share: 0 };
  for (let a = 1; a <= 6; a++)
    for (let b = 1; b <= 6; b++) {
      const share = (b * synthetic.length) / (a * real.length + b * synthetic.length);
      const err = Math.abs(share - ratio);
      if (err < best.err - 1e-12) best = { a, b, err, share };
    }
  const rep = (ids: string[], k: number) => Array.from({ length: k }, () => ids).flat();
  return { ids: [...rep(real, best.a), ...rep(synthetic, best.b)], realisedRatio: best.share };
}

/** Reads a synthetic dataset folder and checks it fits the real dataset. */
export function readSyntheticDataset(dir: string, real: Dataset): Dataset {
  const sds = readDataset(dir);
  const meta = JSON.parse(readFileSync(join(sds.dir, 'dataset.json'), 'utf8')) as { synthetic?: unknown };
  if (!meta.synthetic)
    throw new MedsegIoError('BAD_DATA', 'not a synthetic dataset (its dataset.json has no "synthetic" record; `medseg synthesize` writes one)', sds.dir);
  if (sds.channels.length !== real.channels.length)
    throw new MedsegIoError('BAD_DATA', `the synthetic images have ${sds.channels.length} channels, the dataset ${real.channels.length}`, sds.dir);
  if (JSON.stringify(sds.labels) !== JSON.stringify(real.labels))
    throw new MedsegIoError('BAD_DATA', `the synthetic labels ${JSON.stringify(sds.labels)} differ from the dataset's ${JSON.stringify(real.labels)}`, sds.dir);
  const realIds = new Set(real.training.map((c) => c.id));
  const clash = sds.training.find((c) => realIds.has(c.id));
  if (clash) throw new MedsegIoError('BAD_DATA', `synthetic case id ${clash.id} is also a real case id`, sds.dir);
  return sds;
}
