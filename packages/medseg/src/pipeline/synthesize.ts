/**
 * `medseg synthesize`: train the mask -> image GAN (models/gan-pix2pix.ts,
 * train/gan-train.ts) on a dataset's training pairs within a time budget,
 * then generate synthetic pairs from the training masks (each spatially
 * augmented by the pipeline's transforms where the mask's dimensionality is
 * the GAN's, so the masks are new shapes) and write them as an nnU-Net
 * dataset folder in which every file says it is synthetic: each NIfTI's
 * descrip reads "medseg SYNTHETIC ...", dataset.json has a "synthetic"
 * record, and manifest.json lists every file with synthetic: true. The
 * images are on the preprocessed grid of the plan (its spacing) and in the
 * plan's intensity units where they can be inverted (CT window and mean/std,
 * RGB 0..255); z-scored channels stay z-scored, which the plan's
 * normalisation leaves as they are. A fidelity report (synthesize-fidelity.ts)
 * is written beside them as fidelity.json.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '@medseg/torch';
import { augmentSample } from '../data/augment.ts';
import { xyzFromZyx } from '../data/axes.ts';
import { loadRawCase } from '../data/case.ts';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { preprocessCase } from '../data/preprocess.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { MedsegIoError } from '../io/errors.ts';
import { writeNifti } from '../io/nifti.ts';
import { IDENTITY3 } from '../io/volume.ts';
import { MaskToImageGenerator, PatchDiscriminator, type GanNetworkConfig } from '../models/gan-pix2pix.ts';
import { loadPlan } from '../plan/store.ts';
import type { ChannelNormalization, Plan } from '../plan/types.ts';
import { validatePlan } from '../plan/validate.ts';
import type { GanLoss } from '../train/gan-losses.ts';
import { oneHotMask, spatialOnly, trainGan, type GanTrainResult } from '../train/gan-train.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';
import { Rng } from '../util/random.ts';
import { hasPlanningChoices, planDataset, storedPlanExists, storedPlanPath } from './plan-dataset.ts';
import { measureFidelity, type FidelityOptions, type FidelityReport } from './synthesize-fidelity.ts';

export const SYNTHETIC_DESCRIP = 'medseg SYNTHETIC (pix2pix GAN) - not a patient image';

export interface SynthesizePairsOptions {
  /** The nnU-Net / MSD dataset whose training pairs the GAN learns. */
  dataset: string;
  /** Only these training cases' pairs (default: all): a run that may use only some labels trains its GAN on those. */
  caseIds?: string[];
  /** The synthetic dataset folder to write (must be new or empty). */
  out: string;
  /** A plan file or plan (default: the dataset's stored plan, else a new one). */
  plan?: string | Plan;
  /** 2D or 3D GAN when planning anew (default: the plan's). */
  dims?: '2d' | '3d_fullres';
  /** GAN time budget (default 10 minutes), or a fixed number of steps (tests). */
  minutes?: number;
  steps?: number;
  /** Synthetic pairs to write (default: as many as training cases). */
  count?: number;
  loss?: GanLoss;
  /** L1 weight (default 100). */
  lambda?: number;
  /** Generator features per level (default [16, 32, 64]). */
  features?: number[];
  seed?: number;
  /** Fidelity measurement settings; false skips it. */
  fidelity?: FidelityOptions | false;
  log?: (line: string) => void;
}

export interface SyntheticFile {
  id: string;
  images: string[];
  label: string;
  /** The training case whose (augmented) mask it was generated from. */
  fromCase: string;
  synthetic: true;
}

export interface SynthesizePairsResult {
  dir: string;
  plan: Plan;
  files: SyntheticFile[];
  gan: GanTrainResult;
  fidelity: FidelityReport | null;
  /** The generated pairs on the plan's preprocessed grid (normalised), for callers that measure them further. */
  cases: PreprocessedCase[];
}

async function resolvePlan(o: SynthesizePairsOptions, ds: Dataset, log: (s: string) => void): Promise<Plan> {
  if (typeof o.plan === 'string') return loadPlan(o.plan);
  if (o.plan) return validatePlan(o.plan);
  if (!hasPlanningChoices({ dims: o.dims }) && storedPlanExists(ds.dir)) return loadPlan(storedPlanPath(ds.dir));
  return (await planDataset({ dataset: ds, choices: { dims: o.dims }, out: null, log })).plan;
}

/** The plan's normalisation undone where it can be: CT window units, RGB 0..255; other schemes stay as they are. */
function denormalise(x: Float32Array, n: ChannelNormalization): Float32Array {
  const out = Float32Array.from(x);
  if (n.scheme === 'ct') for (let i = 0; i < out.length; i++) out[i] = out[i]! * Math.max(n.std!, 1e-8) + n.mean!;
  else if (n.scheme === 'rgb01') for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.max(0, out[i]! * 255));
  return out;
}

/** A new mask from a training mask: the pipeline's spatial augmentation, when the mask has the GAN's dimensionality. */
function variedMask(c: PreprocessedCase, plan: Plan, rng: Rng): { label: Uint8Array; spatial: number[] } {
  const [Z, Y, X] = c.shape;
  const gan2d = plan.dims === '2d';
  if (gan2d && Z > 1) return { label: Uint8Array.from(c.label!), spatial: [Z, Y, X] };
  const spatial = gan2d ? [Y, X] : [Z, Y, X];
  const s = augmentSample({ image: new Float32Array(c.label!.length), label: c.label, channels: 1, shape: spatial }, spatialOnly(plan.augmentation), rng);
  return { label: s.label!, spatial: gan2d ? [1, Y, X] : spatial };
}

/** Generates an image [C, Z, Y, X] for a label map [Z, Y, X] (2D: slice by slice), padding each axis to the generator's divisor. */
export function generateImage(g: MaskToImageGenerator, label: Uint8Array, shape: [number, number, number]): Float32Array {
  const K = g.config.numClasses;
  const div = g.divisor;
  return torch.tidy(() => {
    const [Z, Y, X] = shape;
    const lab = torch.tensor(label, [Z, Y, X]).long();
    const pad = (n: number) => Math.ceil(n / div) * div - n;
    let out: torch.Tensor;
    if (g.config.dims === 2) {
      const m = torch.F.pad(oneHotMask(lab, K), [0, pad(X), 0, pad(Y)]);
      out = g.forward(m).narrow(2, 0, Y).narrow(3, 0, X).permute([1, 0, 2, 3]);
    } else {
      const m = torch.F.pad(oneHotMask(lab.unsqueeze(0), K), [0, pad(X), 0, pad(Y), 0, pad(Z)]);
      out = g.forward(m).narrow(2, 0, Z).narrow(3, 0, Y).narrow(4, 0, X).squeeze(0);
    }
    return Float32Array.from(out.contiguous().toTypedArray() as Float32Array);
  });
}

/** The training cases named by `ids` (all of them without), each of which must exist and have a label. */
function pairsToLearn(ds: Dataset, ids: string[] | undefined): Dataset['training'] {
  if (!ids) return ds.training;
  const byId = new Map(ds.training.map((c) => [c.id, c]));
  return ids.map((id) => {
    const c = byId.get(id);
    if (!c) throw new MedsegIoError('BAD_DATA', `synthesize: no training case '${id}'`, ds.dir);
    if (!c.labelPath) throw new MedsegIoError('BAD_DATA', `synthesize: training case '${id}' has no label`, ds.dir);
    return c;
  });
}

export async function synthesizePairs(o: SynthesizePairsOptions): Promise<SynthesizePairsResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const ds = readDataset(o.dataset);
  const out = resolve(o.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw new MedsegIoError('BAD_DATA', 'the output folder exists and is not empty: choose a new one', out);
  const plan = await resolvePlan(o, ds, log);
  const real: PreprocessedCase[] = [];
  for (const c of pairsToLearn(ds, o.caseIds)) real.push(preprocessCase(await loadRawCase(c), plan));
  const dims = plan.dims === '2d' ? 2 : 3;
  const cfg: GanNetworkConfig = { dims, numClasses: plan.network.numClasses, channels: plan.channels.length, features: o.features };
  torch.manualSeed(o.seed ?? 12345);
  const g = new MaskToImageGenerator(cfg);
  const d = new PatchDiscriminator(cfg);
  try {
    const div = g.divisor;
    const patchSize = plan.patchSize.map((p) => Math.max(div, Math.floor(p / div) * div));
    log(`synthesize: ${dims}D pix2pix on ${real.length} pairs of ${ds.name}, patch [${patchSize}], loss ${o.loss ?? 'lsgan'}`);
    const gan = await trainGan(g, d, real, {
      patchSize,
      batchSize: plan.batchSize,
      augmentation: plan.augmentation,
      loss: o.loss,
      lambda: o.lambda,
      ...(o.steps !== undefined ? { steps: o.steps } : { minutes: o.minutes ?? 10 }),
      seed: o.seed,
      log,
    });
    log(
      `gan: ${gan.steps} steps in ${gan.seconds.toFixed(0)} s; D ${gan.first.discriminator.toFixed(3)} -> ${gan.last.discriminator.toFixed(3)}, ` +
        `G adv ${gan.first.adversarial.toFixed(3)} -> ${gan.last.adversarial.toFixed(3)}, L1 ${gan.first.l1.toFixed(3)} -> ${gan.last.l1.toFixed(3)}${gan.stable ? '' : ' (unstable: the discriminator won)'}`,
    );

    mkdirSync(join(out, 'imagesTr'), { recursive: true });
    mkdirSync(join(out, 'labelsTr'), { recursive: true });
    g.eval();
    g.setDropoutAtInference(true);
    const rng = new Rng(o.seed ?? 12345);
    const count = o.count ?? real.length;
    const files: SyntheticFile[] = [];
    const cases: PreprocessedCase[] = [];
    const C = plan.channels.length;
    for (let i = 0; i < count; i++) {
      const src = real[i % real.length]!;
      const { label, spatial } = variedMask(src, plan, rng);
      const shape = (spatial.length === 3 ? spatial : [1, ...spatial]) as [number, number, number];
      const image = torch.noGrad(() => generateImage(g, label, shape));
      const id = `synthetic_${String(i).padStart(4, '0')}`;
      const n = shape[0] * shape[1] * shape[2];
      const geometry = {
        size: xyzFromZyx(shape),
        spacing: xyzFromZyx(src.spacing),
        origin: [0, 0, 0] as [number, number, number],
        direction: [...IDENTITY3] as typeof IDENTITY3,
        meta: {},
      };
      const images: string[] = [];
      for (let ch = 0; ch < C; ch++) {
        const file = join('imagesTr', `${id}_${String(ch).padStart(4, '0')}.nii.gz`);
        await writeNifti(
          join(out, file),
          { ...geometry, channels: 1, data: denormalise(image.subarray(ch * n, (ch + 1) * n), plan.normalization[ch]!) },
          { descrip: SYNTHETIC_DESCRIP },
        );
        images.push(file);
      }
      const labelFile = join('labelsTr', `${id}.nii.gz`);
      await writeNifti(join(out, labelFile), { ...geometry, channels: 1, data: label }, { descrip: SYNTHETIC_DESCRIP });
      files.push({ id, images, label: labelFile, fromCase: src.id, synthetic: true });
      cases.push({ id, data: image, label, channels: C, shape, spacing: src.spacing, properties: { ...src.properties, classLocations: undefined } });
    }
    const record = {
      generator: 'pix2pix conditional GAN (mask -> image): U-Net generator, spectrally normalised PatchGAN discriminator',
      sourceDataset: ds.dir,
      dims: plan.dims,
      loss: gan.loss,
      lambdaL1: o.lambda ?? 100,
      steps: gan.steps,
      minutes: gan.seconds / 60,
      stable: gan.stable,
      createdAt: new Date().toISOString(),
    };
    writeJsonAtomicSync(join(out, 'dataset.json'), {
      name: `${ds.name}-synthetic`,
      description: 'SYNTHETIC image/label pairs generated by medseg synthesize; no image is of a patient',
      channel_names: Object.fromEntries(plan.channels.map((c, i) => [String(i), c])),
      labels: Object.fromEntries(Object.entries(plan.labels).map(([id, name]) => [name, Number(id)])),
      numTraining: count,
      file_ending: '.nii.gz',
      synthetic: record,
    });
    writeJsonAtomicSync(join(out, 'manifest.json'), { synthetic: true, ...record, files });
    let fidelity: FidelityReport | null = null;
    if (o.fidelity !== false) {
      fidelity = await measureFidelity(real, cases, plan, { seed: o.seed, log, ...(o.fidelity ?? {}) });
      writeJsonAtomicSync(join(out, 'fidelity.json'), { synthetic: true, ...fidelity });
      log(
        `fidelity: real-vs-synthetic AUC ${fidelity.classifierAuc.toFixed(3)}, intensity W1 ${fidelity.wasserstein1.map((w) => w.toFixed(3)).join(' / ')}, ` +
          `synthetic-only Dice on real ${fidelity.syntheticOnlyDice.mean.toFixed(3)}`,
      );
    }
    return { dir: out, plan, files, gan, fidelity, cases };
  } finally {
    g.dispose();
    d.dispose();
  }
}
