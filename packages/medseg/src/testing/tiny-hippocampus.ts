/**
 * A fixture model folder (a small 3D U-Net with seeded random weights, 32^3
 * patches, ten steps an epoch, so a validation case is a dozen windows) and a
 * dataset of real MSD hippocampus cases split 3 / 2 in its splits.json: the
 * setting of the tests that continue training a model (compression's and the
 * corrections' fine-tuning). Also a plain dataset of the first n training
 * cases of the fixed split (the planning tests').
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HIPPOCAMPUS_SPLIT } from '../demo/hippocampus-split.ts';
import { importPairedFolders } from '../data/import.ts';
import { defaultAugmentation } from '../plan/complete.ts';
import { modelFile } from '../plan/model-folder.ts';
import { dataPath } from './data.ts';
import { writeFixtureModel } from './model-fixture.ts';

export const TINY_HIPPOCAMPUS_CASES = ['hippocampus_001', 'hippocampus_003', 'hippocampus_006', 'hippocampus_007', 'hippocampus_011'];

/** Writes `<dir>/model` and `<dir>/dataset` (training cases: the first three; validation: the last two). */
export async function tinyHippocampusModel(dir: string): Promise<{ model: string; dataset: string }> {
  const model = join(dir, 'model');
  const plan = writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }]);
  const patchSize = [32, 32, 32];
  writeFileSync(
    modelFile(model, 'plan'),
    JSON.stringify({ ...plan, patchSize, augmentation: defaultAugmentation(3, patchSize), iterationsPerEpoch: 10, batchSize: 2 }),
  );
  const cases = TINY_HIPPOCAMPUS_CASES;
  writeFileSync(modelFile(model, 'splits'), JSON.stringify([{ train: cases.slice(0, 3), val: cases.slice(3) }]));
  for (const d of ['images', 'labels']) {
    mkdirSync(join(dir, 'src', d), { recursive: true });
    for (const id of cases) copyFileSync(dataPath('msd-hippocampus', d, `${id}.nii.gz`), join(dir, 'src', d, `${id}.nii.gz`));
  }
  const dataset = await importPairedFolders(join(dir, 'src/images'), join(dir, 'src/labels'), join(dir, 'dataset'), {
    name: 'hippo-tiny',
    channelNames: ['MRI'],
  });
  return { model, dataset };
}

/** A writable copy of the first `n` training cases of the fixed hippocampus split as a medseg dataset (in a new temporary folder). */
export async function smallHippocampusDataset(n: number): Promise<string> {
  const src = dataPath('msd-hippocampus');
  const out = mkdtempSync(join(tmpdir(), 'medseg-plan-ds-'));
  const ids = HIPPOCAMPUS_SPLIT.train.slice(0, n);
  for (const d of ['images', 'labels']) {
    mkdirSync(join(out, 'src', d), { recursive: true });
    for (const id of ids) copyFileSync(join(src, d, `${id}.nii.gz`), join(out, 'src', d, `${id}.nii.gz`));
  }
  return importPairedFolders(join(out, 'src/images'), join(out, 'src/labels'), join(out, 'dataset'), { name: 'hippo-small', channelNames: ['MRI'] });
}
