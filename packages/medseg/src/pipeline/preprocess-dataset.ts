/**
 * Preprocessing a dataset for its plan into the cache `medseg train` reads:
 * `<dataset>/medseg/preprocessed/<plan hash>/` (like nnU-Net's
 * plan_and_preprocess). The folder is named by the hash of the plan fields
 * preprocessing depends on (data/preprocess.ts planHash), so a changed plan
 * gets a folder of its own and is never served another plan's cases; inside,
 * each case is also checked against the hash and its source files.
 */
import { join } from 'node:path';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { planHash, preprocessDataset } from '../data/preprocess.ts';
import { MedsegIoError } from '../io/errors.ts';
import { loadPlan } from '../plan/store.ts';
import type { Plan } from '../plan/types.ts';
import { datasetWorkDir, ensureWritableFolder, storedPlanExists, storedPlanPath } from './plan-dataset.ts';

/** The cache folder of a dataset's cases preprocessed for a plan. */
export function preprocessedDir(datasetDir: string, plan: Plan): string {
  return join(datasetWorkDir(datasetDir), 'preprocessed', planHash(plan));
}

export interface PreprocessOptions {
  dataset: string | Dataset;
  /** A plan file or plan; default: the dataset's stored plan (`medseg plan`). */
  plan?: string | Plan;
  /** Cache folder instead of preprocessedDir(dataset, plan). */
  out?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface PreprocessResult {
  dir: string;
  plan: Plan;
  ids: string[];
  /** Cases preprocessed now (the rest were current in the cache). */
  computed: number;
}

export async function preprocessForPlan(o: PreprocessOptions): Promise<PreprocessResult> {
  const ds = typeof o.dataset === 'string' ? readDataset(o.dataset) : o.dataset;
  let plan: Plan;
  if (typeof o.plan === 'object') plan = o.plan;
  else if (typeof o.plan === 'string') plan = loadPlan(o.plan);
  else if (storedPlanExists(ds.dir)) plan = loadPlan(storedPlanPath(ds.dir));
  else
    throw new MedsegIoError('NOT_FOUND', `the dataset has no plan yet: run \`medseg plan ${ds.dir}\` first, or give one with --plan`, storedPlanPath(ds.dir));
  const dir = o.out ?? preprocessedDir(ds.dir, plan);
  ensureWritableFolder(join(dir, 'plan-hash.txt'), '--out');
  const r = await preprocessDataset(ds, plan, dir, { onProgress: o.onProgress });
  return { dir, plan, ids: r.ids, computed: r.computed };
}
