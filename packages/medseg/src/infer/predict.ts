/**
 * Prediction with a trained model folder: preprocess like training did,
 * sliding window (Gaussian, half-patch steps) with the plan's TTA (mirroring;
 * in 2D also transposing), average the probabilities of every fold present
 * (ensembling), resample back onto the original grid, argmax, the
 * postprocessing cross-validation chose, and write the label map in the
 * input's format (NIfTI, NRRD, PNG; a DICOM series gives
 * a DICOM SEG).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as torch from '@medseg/torch';
import type { Volume } from '../io/volume.ts';
import { readVolume, writeVolume } from '../io/read.ts';
import { createNetwork } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { loadPlan, type Plan } from '../data/plan.ts';
import { preprocessCase, revertPreprocessing } from '../data/preprocess.ts';
import { zyxShape, zyxSpacing } from '../data/axes.ts';
import type { RawCaseData } from '../data/case.ts';
import { inferenceSettings } from '../pipeline/training-config.ts';
import { MedsegIoError } from '../io/errors.ts';
import { BEST_WEIGHTS, FINAL_WEIGHTS } from '../train/trainer.ts';
import { slidingWindowLogits, ttaOptions } from './sliding-window.ts';
import { applyPostprocessing } from './postprocess.ts';

export interface LoadedModel {
  dir: string;
  plan: Plan;
  nets: SegmentationNetwork[];
  folds: number[];
  /** Classes whose largest connected component is kept (chosen by cross-validation). */
  postprocessing: number[];
}

export function foldDirs(modelDir: string): { fold: number; dir: string }[] {
  return readdirSync(modelDir)
    .filter((f) => /^fold_\d+$/.test(f) && statSync(join(modelDir, f)).isDirectory())
    .map((f) => ({ fold: Number(f.slice(5)), dir: join(modelDir, f) }))
    .sort((a, b) => a.fold - b.fold);
}

/** Loads every trained fold (best weights, else final) of a model folder. */
export function loadModel(modelDir: string, o: { folds?: number[]; checkpoint?: 'best' | 'final' } = {}): LoadedModel {
  const planPath = join(modelDir, 'plan.json');
  if (!existsSync(planPath)) throw new Error(`${modelDir} is not a medseg model folder (no plan.json)`);
  const plan = loadPlan(planPath);
  const nets: SegmentationNetwork[] = [];
  const folds: number[] = [];
  for (const { fold, dir } of foldDirs(modelDir)) {
    if (o.folds && !o.folds.includes(fold)) continue;
    const order = o.checkpoint === 'final' ? [FINAL_WEIGHTS, BEST_WEIGHTS] : [BEST_WEIGHTS, FINAL_WEIGHTS];
    const file = order.map((f) => join(dir, f)).find((p) => existsSync(p));
    if (!file) continue;
    const net = createNetwork(plan.network);
    const { tensors } = torch.loadSafetensors(file);
    net.loadStateDict(tensors);
    for (const t of tensors.values()) t.dispose();
    nets.push(net.eval() as SegmentationNetwork);
    folds.push(fold);
  }
  if (nets.length === 0) throw new Error(`${modelDir}: no trained fold found (fold_N/${BEST_WEIGHTS})`);
  const ppPath = join(modelDir, 'postprocessing.json');
  const postprocessing = existsSync(ppPath) ? ((JSON.parse(readFileSync(ppPath, 'utf8')) as { keepLargestComponent: number[] }).keepLargestComponent ?? []) : [];
  return { dir: modelDir, plan, nets, folds, postprocessing };
}

export function disposeModel(m: LoadedModel): void {
  for (const n of m.nets) n.dispose();
}

export interface Prediction {
  /** Label map on the original grid (x-fastest), as a Volume with the input's geometry. */
  labels: Volume;
  /** Class probabilities [K, Z, Y, X] on the original grid (only when asked). */
  probabilities?: Float32Array;
  seconds: number;
}

/** Segments one case given its channel images (same grid). */
export function predictVolumes(m: LoadedModel, images: Volume[], o: { tta?: boolean; keepProbabilities?: boolean; onTile?: (done: number, total: number) => void } = {}): Prediction {
  const t0 = performance.now();
  const plan = m.plan;
  // One file per channel (nnU-Net _0000, _0001, ...) or one multi-channel file (an RGB fundus photo).
  const given = images.reduce((a, v) => a + v.channels, 0);
  if (given !== plan.channels.length) {
    throw new MedsegIoError('BAD_DATA', `the model expects ${plan.channels.length} channel(s) (${plan.channels.join(', ')}), the input has ${given}`, images[0]?.meta.sourcePath);
  }
  const first = images[0]!;
  for (const v of images) {
    if (v.size.some((n, i) => n !== first.size[i])) throw new MedsegIoError('BAD_GEOMETRY', `channel images differ in size (${v.size} vs ${first.size})`, v.meta.sourcePath);
  }
  const n = first.size[0] * first.size[1] * first.size[2];
  const channels = given;
  const image = new Float32Array(channels * n);
  let offset = 0;
  for (const v of images) {
    image.set(v.data as ArrayLike<number>, offset);
    offset += v.data.length;
  }
  const { data: _d, ...geometry } = first;
  const raw: RawCaseData = { id: 'input', image, label: null, channels, shape: zyxShape(first), spacing: zyxSpacing(first), geometry: { ...geometry, channels } };
  const c = preprocessCase(raw, plan);
  const K = plan.network.numClasses;
  const spatial = plan.dims === '2d' ? c.shape.slice(1) : c.shape;
  const inference = inferenceSettings(plan);
  // tta false: a single pass; otherwise the plan's mirroring (and transposing).
  const tta = o.tta === false ? { mirror: false } : inference;
  const probs = torch.tidy(() => {
    const img = torch.tensor(c.data, [c.channels, ...spatial]);
    let sum: torch.Tensor | null = null;
    for (const net of m.nets) {
      const logits = slidingWindowLogits(net, img, {
        patchSize: plan.patchSize,
        stepFraction: inference.stepFraction,
        ...ttaOptions(tta, spatial.length),
        onProgress: o.onTile,
      });
      const p = torch.F.softmax(logits, 0);
      sum = sum ? sum.add(p) : p;
    }
    return sum!.div(m.nets.length).contiguous().toTypedArray() as Float32Array;
  });
  const original = revertPreprocessing({ probabilities: probs, numClasses: K }, c.shape, c.properties, plan) as Float32Array;
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = original[i]!;
    for (let k = 1; k < K; k++) {
      const v = original[k * n + i]!;
      if (v > bv) {
        bv = v;
        best = k;
      }
    }
    labels[i] = best;
  }
  applyPostprocessing(labels, first.size, m.postprocessing);
  return {
    labels: { ...geometry, channels: 1, data: labels, meta: { ...first.meta, modality: 'SEG', extra: { source: first.meta.sourcePath } } },
    probabilities: o.keepProbabilities ? original : undefined,
    seconds: (performance.now() - t0) / 1000,
  };
}

const IMAGE_ENDINGS = ['.nii.gz', '.nii', '.nrrd', '.nhdr', '.png', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp', '.gif'];

function outputName(input: string): { id: string; ending: string } {
  const name = basename(input);
  const ending = IMAGE_ENDINGS.find((e) => name.toLowerCase().endsWith(e));
  if (!ending) return { id: name, ending: '.seg.dcm' }; // a DICOM series folder or file
  const id = name.slice(0, -ending.length).replace(/_0000$/, '');
  const out = ending === '.nhdr' ? '.nrrd' : ['.tif', '.tiff', '.jpg', '.jpeg', '.bmp', '.gif'].includes(ending) ? '.png' : ending;
  return { id, ending: out };
}

/** Writes a prediction next to others in outDir, in the input's format. */
export async function writePrediction(outDir: string, input: string, source: Volume, pred: Prediction, plan: Plan): Promise<string> {
  const { id, ending } = outputName(input);
  const path = join(outDir, `${id}${ending}`);
  if (ending === '.seg.dcm') {
    const { writeDicomSeg } = await import('../io/dicom/index.ts');
    const segments = Object.entries(plan.labels)
      .filter(([k]) => Number(k) > 0)
      .map(([k, name]) => ({ number: Number(k), label: String(name), algorithmType: 'AUTOMATIC' as const, algorithmName: `medseg ${plan.network.architecture}` }));
    await writeDicomSeg(pred.labels, source, segments, { path, seriesDescription: 'medseg segmentation' });
    return path;
  }
  await writeVolume(path, pred.labels);
  return path;
}

/** Reads one case: a file (one channel), nnU-Net style _0000.._000N files, or a DICOM series folder. */
export async function readInputCase(path: string, channels: number): Promise<Volume[]> {
  if (channels === 1 || !/_0000\.[a-z.]+$/i.test(path)) return [await readVolume(path)];
  const vols: Volume[] = [];
  for (let c = 0; c < channels; c++) vols.push(await readVolume(path.replace(/_0000(\.[a-z.]+)$/i, `_${String(c).padStart(4, '0')}$1`)));
  return vols;
}
