/**
 * The unlabelled cases of a semi-supervised run and their batches: the
 * dataset's imagesTr cases without labels, a separate image folder, or
 * labelled training cases whose labels are set aside (the label-efficiency
 * bench); preprocessed with the plan like the labelled ones, and drawn by a
 * second worker loader (uniformly placed patches, the plan's augmentation),
 * batch k of the run from (seed, k) as the labelled loader, so a resumed run
 * sees the same unlabelled sequence.
 */
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import type { Dataset, DatasetCase } from '../data/dataset.ts';
import { readImageFolder } from '../data/dataset.ts';
import { BatchLoader } from '../data/loader.ts';
import { preprocessDataset } from '../data/preprocess.ts';
import type { Plan } from '../plan/types.ts';
import type { TrainingData } from '../train/trainer.ts';

/** Where the unlabelled cases come from. */
export type UnlabelledSource = { folder: string } | { datasetIds: string[] } | 'dataset';

export interface UnlabelledSet {
  /** The preprocessed-case folder they are in. */
  cacheDir: string;
  ids: string[];
  /** Said in the plan and the model card. */
  source: string;
}

/**
 * Preprocesses the unlabelled cases. 'dataset': imagesTr without labels
 * (readDataset with { unlabelled: true }), cached in <cacheDir>/unlabelled;
 * a folder: its images, cached in <cacheDir>/unlabelled-<folder name>;
 * datasetIds: training cases already in cacheDir, their labels unused.
 */
export async function prepareUnlabelled(ds: Dataset, plan: Plan, cacheDir: string, from: UnlabelledSource): Promise<UnlabelledSet> {
  if (typeof from === 'object' && 'datasetIds' in from) {
    const known = new Set(ds.training.map((c) => c.id));
    const bad = from.datasetIds.find((id) => !known.has(id));
    if (bad) throw new MedsegIoError('BAD_DATA', `unlabelled case ${bad} is not a training case of the dataset`, ds.dir);
    return { cacheDir, ids: from.datasetIds, source: `${from.datasetIds.length} training cases of ${ds.name} with their labels set aside` };
  }
  let cases: DatasetCase[];
  let dir: string;
  let source: string;
  if (from === 'dataset') {
    cases = ds.unlabelled ?? [];
    dir = join(cacheDir, 'unlabelled');
    source = `imagesTr of ${ds.name} without labels`;
  } else {
    cases = readImageFolder(from.folder, ds.fileEnding, ds.channels.length);
    dir = join(
      cacheDir,
      `unlabelled-${from.folder
        .replace(/[/\\]+$/, '')
        .split(/[/\\]/)
        .pop()}`,
    );
    source = from.folder;
  }
  if (cases.length === 0)
    throw new MedsegIoError(
      'BAD_DATA',
      'semi-supervised training needs unlabelled cases: imagesTr images without a label file, or a folder given with --unlabelled',
      ds.dir,
    );
  await preprocessDataset({ ...ds, training: cases }, plan, dir);
  return { cacheDir: dir, ids: cases.map((c) => c.id), source };
}

/** `data` with an unlabelled batch (plan.batchSize patches) added to each labelled one. */
export function withUnlabelled(data: TrainingData, u: UnlabelledSet, plan: Plan, seed: number, workers: number): TrainingData {
  let loader: BatchLoader | null = null;
  let expected = -1;
  // Uniformly placed patches: oversampling would steer them by the labels that training cases set aside still have.
  const uplan = { ...plan, oversampleForeground: 0 };
  return {
    validation: data.validation,
    async nextBatch(epoch, it) {
      const k = epoch * plan.iterationsPerEpoch + it;
      if (!loader || k !== expected) {
        await loader?.close();
        loader = new BatchLoader({ dir: u.cacheDir, ids: u.ids, plan: uplan, seed: seed ^ 0x5eed, workers, start: k });
      }
      expected = k + 1;
      const [labelled, b] = await Promise.all([data.nextBatch(epoch, it), loader.next()]);
      return { ...labelled, unlabelled: torch.tensor(b.image, b.shape) };
    },
    async close() {
      await loader?.close();
      await data.close?.();
    },
  };
}
