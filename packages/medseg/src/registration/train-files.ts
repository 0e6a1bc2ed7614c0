/**
 * Training a registration model from image files: each pair is affinely
 * aligned first (the network learns the deformable part on top of the
 * affine, as at prediction), then the network trains within a time budget,
 * unsupervised on similarity + smoothness, or also on the Dice of the warped
 * labels when both images of the pairs have label files (`supervised`).
 *
 * The model folder is rewritten every `checkpointSeconds` (weights and
 * training.json with the seconds spent), so a killed run loses at most that
 * much; `resume` continues from the folder's weights with the rest of the
 * budget (Adam's moments start afresh: the weights carry the progress).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '@medseg/torch';
import { readDataset } from '../data/dataset.ts';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume } from '../io/read.ts';
import type { Volume } from '../io/volume.ts';
import type { ProgressReporter } from '../util/progress.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';
import { registerAffine } from './affine.ts';
import { geometryOf, normalizeIntensity, volumeTensor } from './grid.ts';
import { RegistrationModel, trainRegistrationModel, type RegistrationModelSettings, type TrainingPair } from './network.ts';
import type { PlacedImage } from './pyramid.ts';
import { oneHotLabels } from './regularization.ts';

export interface PairFiles {
  fixed: string;
  moving: string;
  fixedLabels?: string;
  movingLabels?: string;
}

export interface TrainRegistrationOptions {
  out: string;
  seconds: number;
  settings?: Partial<RegistrationModelSettings>;
  /** Train on the warped labels' Dice as well (every pair needs both label files). */
  supervised?: boolean;
  lr?: number;
  seed?: number;
  checkpointSeconds?: number;
  resume?: boolean;
  log?: (line: string) => void;
  progress?: ProgressReporter;
}

export interface TrainRegistrationResult {
  dir: string;
  pairs: number;
  steps: number;
  loss: number;
  /** Training seconds over all runs of this folder (a resumed run adds to them). */
  seconds: number;
  affineSeconds: number;
  labels: number[];
}

const TRAINING_FILE = 'training.json';

interface TrainingRecord {
  pairs: number;
  steps: number;
  loss: number;
  seconds: number;
  budgetSeconds: number;
  supervised: boolean;
  labels: number[];
}

/**
 * Training pairs from a dataset folder: every training case registered to an
 * atlas case (`atlas`: its id; the atlas is the moving image, as in
 * atlas-based segmentation), or else `pairs` random ordered pairs of distinct
 * cases drawn with `seed`.
 */
export function datasetPairs(dataset: string, o: { atlas?: string; pairs?: number; seed?: number } = {}): PairFiles[] {
  const ds = readDataset(dataset);
  if (ds.channels.length !== 1) throw new MedsegIoError('BAD_DATA', `registration reads one channel; the dataset has ${ds.channels.length}`, ds.dir);
  const files = (c: (typeof ds.training)[number]) => ({ image: c.imagePaths[0]!, labels: c.labelPath ?? undefined });
  if (o.atlas !== undefined) {
    const atlas = ds.training.find((c) => c.id === o.atlas);
    if (!atlas) throw new MedsegIoError('NOT_FOUND', `no training case '${o.atlas}' to use as the atlas`, ds.dir);
    const a = files(atlas);
    const subjects = ds.training.filter((c) => c !== atlas).slice(0, o.pairs ?? Infinity);
    return subjects.map((c) => ({ fixed: files(c).image, fixedLabels: files(c).labels, moving: a.image, movingLabels: a.labels }));
  }
  if (ds.training.length < 2) throw new MedsegIoError('BAD_DATA', 'registration training needs at least two cases', ds.dir);
  let seed = o.seed ?? 1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const n = ds.training.length;
  const count = o.pairs ?? Math.min(100, n * (n - 1));
  const out: PairFiles[] = [];
  for (let k = 0; k < count; k++) {
    const i = Math.floor(random() * n);
    const j = (i + 1 + Math.floor(random() * (n - 1))) % n;
    const f = files(ds.training[i]!);
    const m = files(ds.training[j]!);
    out.push({ fixed: f.image, fixedLabels: f.labels, moving: m.image, movingLabels: m.labels });
  }
  return out;
}

function labelClasses(volumes: Volume[]): number[] {
  const seen = new Set<number>();
  for (const v of volumes) for (let i = 0; i < v.data.length; i++) seen.add(Number(v.data[i]));
  seen.delete(0);
  return [...seen].sort((a, b) => a - b);
}

function readRecord(dir: string): TrainingRecord | null {
  const p = join(dir, TRAINING_FILE);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as TrainingRecord;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `${TRAINING_FILE} is not valid JSON (${(e as Error).message})`, p);
  }
}

/** Writes the model next to the folder and renames each file into place, so a kill mid-write leaves every file whole (at worst training.json one checkpoint behind the weights). */
function checkpoint(model: RegistrationModel, dir: string, record: TrainingRecord): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${dir}.writing`;
  rmSync(tmp, { recursive: true, force: true });
  model.save(tmp);
  for (const f of ['weights.safetensors', 'registration.json']) renameSync(join(tmp, f), join(dir, f));
  rmSync(tmp, { recursive: true, force: true });
  writeJsonAtomicSync(join(dir, TRAINING_FILE), record);
}

export async function trainRegistrationFiles(pairFiles: readonly PairFiles[], o: TrainRegistrationOptions): Promise<TrainRegistrationResult> {
  if (pairFiles.length === 0) throw new RangeError('no training pairs');
  if (!(o.seconds > 0)) throw new RangeError(`the time budget must be positive, not ${o.seconds} s`);
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const dir = resolve(o.out);
  const previous = o.resume ? readRecord(dir) : null;
  if (o.resume && !previous) throw new MedsegIoError('NOT_FOUND', `nothing to resume: no ${TRAINING_FILE} in the model folder`, dir);
  if (!o.resume && existsSync(join(dir, TRAINING_FILE))) {
    throw new MedsegIoError('BAD_DATA', 'the folder holds a registration model already: pass resume to continue it, or choose another folder', dir);
  }
  // A resumed run keeps the supervision it started with.
  const supervised = previous ? previous.supervised : (o.supervised ?? false);
  if (supervised && pairFiles.some((p) => !p.fixedLabels || !p.movingLabels)) {
    throw new MedsegIoError('BAD_DATA', 'supervised registration training needs label files for both images of every pair');
  }

  const images = new Map<string, Volume>();
  const read = async (path: string) => {
    let v = images.get(path);
    if (!v) images.set(path, (v = await readVolume(path)));
    return v;
  };
  const labelVolumes = new Map<string, Volume>();
  for (const p of supervised ? pairFiles : [])
    for (const f of [p.fixedLabels!, p.movingLabels!]) if (!labelVolumes.has(f)) labelVolumes.set(f, await readVolume(f));
  const labels = previous?.labels ?? labelClasses([...labelVolumes.values()]);

  const placed = new Map<string, PlacedImage>();
  const place = async (path: string): Promise<PlacedImage> => {
    let p = placed.get(path);
    if (!p) {
      const v = await read(path);
      placed.set(path, (p = { image: torch.tidy(() => normalizeIntensity(volumeTensor(v))).keep(), geometry: geometryOf(v) }));
    }
    return p;
  };
  const oneHot = new Map<string, torch.Tensor>();
  const hot = (path: string) => {
    let t = oneHot.get(path);
    if (!t) oneHot.set(path, (t = torch.tidy(() => oneHotLabels(volumeTensor(labelVolumes.get(path)!), labels)).keep()));
    return t;
  };

  const t0 = performance.now();
  const pairs: TrainingPair[] = [];
  o.progress?.start(pairFiles.length, 'affine');
  try {
    for (const [k, p] of pairFiles.entries()) {
      const fixed = await place(p.fixed);
      const moving = await place(p.moving);
      pairs.push({
        fixed,
        moving,
        affine: registerAffine(fixed, moving).matrix,
        labels: supervised ? { fixed: hot(p.fixedLabels!), moving: hot(p.movingLabels!) } : null,
      });
      o.progress?.update(k + 1);
    }
    o.progress?.stop();
    const affineSeconds = (performance.now() - t0) / 1000;
    log(`registration training: ${pairs.length} pairs aligned affinely in ${affineSeconds.toFixed(1)} s`);

    const model = previous ? RegistrationModel.load(dir) : RegistrationModel.create(o.settings);
    const spent = previous?.seconds ?? 0;
    const budget = previous ? previous.budgetSeconds : o.seconds;
    const left = Math.max(0, budget - spent);
    const record = (steps: number, loss: number, seconds: number): TrainingRecord => ({
      pairs: pairs.length,
      steps: (previous?.steps ?? 0) + steps,
      loss,
      seconds: spent + seconds,
      budgetSeconds: budget,
      supervised,
      labels,
    });
    try {
      const every = o.checkpointSeconds ?? 60;
      let lastSave = performance.now();
      const start = performance.now();
      o.progress?.start(Math.ceil(left), 'training (s)');
      const r = trainRegistrationModel(model, pairs, {
        seconds: left,
        lr: o.lr,
        seed: o.seed,
        onStep: (step, loss) => {
          const now = performance.now();
          o.progress?.update(Math.min(Math.ceil(left), Math.round((now - start) / 1000)), { step, loss: loss.toFixed(4) });
          if ((now - lastSave) / 1000 >= every) {
            model.net.eval();
            const rec = record(step, loss, (now - start) / 1000);
            checkpoint(model, dir, rec);
            log(`registration training: checkpoint at step ${rec.steps}, ${rec.seconds.toFixed(0)} s`);
            model.net.train();
            lastSave = performance.now();
          }
        },
      });
      o.progress?.update(Math.ceil(left));
      o.progress?.stop();
      const seconds = (performance.now() - start) / 1000;
      const final = record(r.steps, r.steps > 0 ? r.loss : (previous?.loss ?? Number.NaN), seconds);
      checkpoint(model, dir, final);
      log(`registration training: ${final.steps} steps in ${final.seconds.toFixed(0)} s, loss ${final.loss.toFixed(4)}; wrote ${dir}`);
      return { dir, pairs: pairs.length, steps: final.steps, loss: final.loss, seconds: final.seconds, affineSeconds, labels };
    } finally {
      model.net.dispose();
    }
  } finally {
    for (const p of placed.values()) p.image.dispose();
    for (const t of oneHot.values()) t.dispose();
  }
}
