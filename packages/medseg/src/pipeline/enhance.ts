/**
 * Enhancement jobs: train a denoising or super-resolution model on a folder
 * of images, and apply one to an image file. The training images come from
 * a dataset folder (imagesTr/ of an nnU-Net or MSD dataset, labelled or
 * not), an images/ folder beside it, or the folder's own image files; the
 * last tenth of them (sorted, at least one) validates, unless the caller
 * names both lists.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { prepareVolume, type EnhanceVolume, type Shape3 } from '../data/enhance-pairs.ts';
import { readDataset, readImageFolder } from '../data/dataset.ts';
import { enhanceVolume } from '../infer/enhance.ts';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume, writeVolume } from '../io/read.ts';
import { EnhancementModel, ENHANCE_FILE } from '../models/enhance-model.ts';
import type { EnhanceSettings } from '../plan/enhance-settings.ts';
import { DEFAULT_ENHANCE_TRAINING, trainEnhancement, type EnhanceTrainingConfig, type EnhanceTrainResult } from '../train/enhance-trainer.ts';
import type { ProgressReporter } from '../util/progress.ts';
import { mixSeed } from '../util/random.ts';

/** The image files of a dataset folder (see the module comment). */
export function enhanceImagePaths(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'dataset folder does not exist', dir);
  if (existsSync(join(dir, 'dataset.json'))) {
    const ds = readDataset(dir, { unlabelled: true });
    return [...ds.training, ...(ds.unlabelled ?? [])].map((c) => c.imagePaths[0]!).sort();
  }
  const folder = existsSync(join(dir, 'images')) ? join(dir, 'images') : dir;
  return readImageFolder(folder, '.nii.gz', 1)
    .map((c) => c.imagePaths[0]!)
    .sort();
}

/** One image as the [nz, ny, nx] float array the enhancement code works on. */
export async function readEnhanceImage(path: string): Promise<{ data: Float32Array; shape: Shape3 }> {
  const v = await readVolume(path);
  if (v.channels !== 1) throw new MedsegIoError('UNSUPPORTED', `enhancement works on one-channel images, this one has ${v.channels}`, path);
  return { data: Float32Array.from(v.data), shape: [v.size[2], v.size[1], v.size[0]] };
}

export interface TrainEnhanceOptions {
  out: string;
  /** A dataset folder (its images are split 9:1), or explicit lists. */
  dataset?: string;
  trainImages?: string[];
  valImages?: string[];
  settings: Partial<EnhanceSettings>;
  training?: Partial<EnhanceTrainingConfig>;
  resume?: boolean;
  /** Stop after this many epochs of this run (tests of resume). */
  stopAfterEpochs?: number;
  progress?: ProgressReporter;
  log?: (line: string) => void;
}

export interface TrainEnhanceResult {
  out: string;
  settings: EnhanceSettings;
  trainImages: number;
  valImages: number;
  result: EnhanceTrainResult;
}

async function prepare(paths: string[], s: EnhanceSettings, seed: number, salt: number): Promise<EnhanceVolume[]> {
  const out: EnhanceVolume[] = [];
  for (const [i, p] of paths.entries()) {
    const { data, shape } = await readEnhanceImage(p);
    out.push(prepareVolume(data, shape, s, mixSeed(seed, salt, i)));
  }
  return out;
}

/** Trains (or, with resume and a checkpoint, goes on training) an enhancement model into `out`. */
export async function trainEnhanceModel(o: TrainEnhanceOptions): Promise<TrainEnhanceResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  let train = o.trainImages;
  let val = o.valImages;
  if (!train || !val) {
    if (!o.dataset) throw new RangeError('trainEnhanceModel needs a dataset folder or training and validation image lists');
    const all = enhanceImagePaths(o.dataset);
    const nVal = all.length > 1 ? Math.max(1, Math.round(all.length / 10)) : 0;
    train = all.slice(0, all.length - nVal);
    val = nVal ? all.slice(all.length - nVal) : all;
  }
  if (train.length === 0) throw new MedsegIoError('BAD_DATA', 'no training images', o.dataset);
  // a resumed run keeps the settings it started with
  const saved = o.resume && existsSync(join(o.out, ENHANCE_FILE));
  const cfg: EnhanceTrainingConfig = { ...DEFAULT_ENHANCE_TRAINING, ...o.training };
  torch.manualSeed(cfg.seed);
  const model = saved ? EnhancementModel.fromSettingsFile(o.out) : EnhancementModel.create(o.settings);
  try {
    const s = model.settings;
    log(
      `enhance: ${s.task}${s.task === 'sr' ? ` x${s.factor} along axis ${'zyx'[s.axis]}` : ` ${s.selfSupervised ? 'Noise2Void' : 'supervised'}, noise ${s.noise}`}, ${s.dims}D U-Net [${s.features}], patch [${s.patch}], ${train.length} training / ${val.length} validation images`,
    );
    const data = { train: await prepare(train, s, cfg.seed, 1), val: await prepare(val, s, cfg.seed, 2) };
    model.writeSettings(o.out, { training: cfg, trainImages: train.length, valImages: val.length });
    const result = await trainEnhancement(model, cfg, data, o.out, { resume: o.resume, progress: o.progress, stopAfterEpochs: o.stopAfterEpochs });
    model.writeSettings(o.out, { training: cfg, trainImages: train.length, valImages: val.length, result });
    return { out: o.out, settings: s, trainImages: train.length, valImages: val.length, result };
  } finally {
    model.net.dispose();
  }
}

/** Enhances one image file with a trained model, writing the result (float32, the input's geometry; SR: refined along its axis). */
export async function enhanceFile(
  modelDir: string,
  imagePath: string,
  outPath: string,
): Promise<{ out: string; task: string; size: number[]; spacing: number[]; seconds: number }> {
  const model = EnhancementModel.load(modelDir);
  try {
    const v = await readVolume(imagePath);
    const t0 = performance.now();
    const out = enhanceVolume(model, v);
    const seconds = (performance.now() - t0) / 1000;
    await writeVolume(outPath, out);
    return { out: outPath, task: model.settings.task, size: [...out.size], spacing: [...out.spacing], seconds };
  } finally {
    model.net.dispose();
  }
}
