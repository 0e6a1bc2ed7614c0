/**
 * Preprocessing, in nnU-Net v2's order: crop to the nonzero bounding box,
 * normalise per the plan, resample to the plan's spacing, collect foreground
 * locations for oversampling. And the inverse for predictions.
 * - Crop: bounding box of voxels nonzero in any channel. Voxels outside the
 *   nonzero mask are what nnU-Net marks -1 in the label; they only matter for
 *   normalisation (useMaskForNorm) and are stored as background 0, as
 *   nnU-Net's training pipeline turns -1 into 0 before the loss. (nnU-Net
 *   also fills holes in the mask; we do not.)
 * - Resampling (resample.ts): images cubic B-spline, labels one-hot + linear
 *   + argmax; along a much coarser axis (plan.resampling.separateZ and the
 *   case's spacing ratio > 3) nearest for both, as nnU-Net's separate_z.
 * - Cache: one binary file (float32 image, then uint8 label) + one JSON per
 *   case, written atomically; reused when the plan hash and source files match.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import type { Dataset, DatasetCase } from './dataset.ts';
import type { Zyx } from './axes.ts';
import { loadRawCase, type RawCaseData } from './case.ts';
import { boxShape, cropArray, nonzeroBox, normalizeChannel, type Box } from './normalize.ts';
import type { Plan } from '../plan/types.ts';
import { resampleImage, resampleLabel, type Kernel } from './resample.ts';
import { Rng } from '../util/random.ts';
import type { CaseProperties, PreprocessedCase } from './types.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

type PlanPart = Pick<Plan, 'dims' | 'targetSpacing' | 'normalization' | 'resampling' | 'labels' | 'channels'>;

export const PREPROCESS_VERSION = 1;

export function planHash(plan: PlanPart): string {
  const { dims, targetSpacing, normalization, resampling, labels, channels } = plan;
  return createHash('sha256')
    .update(JSON.stringify({ v: PREPROCESS_VERSION, dims, targetSpacing, normalization, resampling, labels, channels }))
    .digest('hex')
    .slice(0, 16);
}

/** Per-axis kernels for images and labels, and the shape after resampling. */
export function resamplingFor(plan: PlanPart, spacing: Zyx, shape: Zyx): { newShape: Zyx; image: Kernel[]; label: Kernel[] } {
  const target = [...plan.targetSpacing] as Zyx;
  if (plan.dims === '2d') target[0] = spacing[0]; // 2D: never across slices
  const newShape = shape.map((s, i) => (plan.dims === '2d' && i === 0 ? s : Math.max(1, Math.round((s * spacing[i]!) / target[i]!)))) as Zyx;
  const image: Kernel[] = [plan.resampling.image, plan.resampling.image, plan.resampling.image];
  const label: Kernel[] = ['linear', 'linear', 'linear'];
  // nnU-Net's separate_z: decided per case from its own (or the target) spacing ratio.
  const ratio = (s: number[]) => Math.max(...s) / Math.min(...s);
  if (plan.dims === '3d_fullres' && plan.resampling.separateZ) {
    const ref = ratio(spacing) > plan.resampling.anisotropyThreshold ? spacing : ratio(target) > plan.resampling.anisotropyThreshold ? target : null;
    if (ref) {
      const axis = ref.indexOf(Math.max(...ref));
      image[axis] = 'nearest';
      label[axis] = 'nearest';
    }
  }
  return { newShape, image, label };
}

/** Up to 10000 locations per class (at least 1% of its voxels), as nnU-Net. */
export function classLocations(label: Uint8Array, shape: Zyx, numClasses: number, seed: number): Record<number, [number, number, number][]> {
  const [, Y, X] = shape;
  const rng = new Rng(seed);
  const out: Record<number, [number, number, number][]> = {};
  for (let c = 1; c < numClasses; c++) {
    const all: number[] = [];
    for (let i = 0; i < label.length; i++) if (label[i] === c) all.push(i);
    if (all.length === 0) continue;
    const k = Math.max(Math.min(10000, all.length), Math.ceil(all.length * 0.01));
    const chosen: number[] = [];
    if (k >= all.length) chosen.push(...all);
    else for (let j = 0; j < k; j++) chosen.push(all[rng.int(all.length)]!);
    out[c] = chosen.map((i) => [Math.floor(i / (Y * X)), Math.floor(i / X) % Y, i % X]);
  }
  return out;
}

export function preprocessCase(raw: RawCaseData, plan: PlanPart, o: { seed?: number } = {}): PreprocessedCase {
  const C = raw.channels;
  if (C !== plan.channels.length) throw new MedsegIoError('BAD_DATA', `case ${raw.id} has ${C} channels; the plan expects ${plan.channels.length}`);
  const K = Object.keys(plan.labels).length;
  const box = nonzeroBox(raw.image, C, raw.shape);
  const cshape = boxShape(box);
  const image = cropArray(raw.image, C, raw.shape, box);
  let label = raw.label ? cropArray(raw.label, 1, raw.shape, box) : null;
  if (label)
    for (let i = 0; i < label.length; i++)
      if (label[i]! >= K) throw new MedsegIoError('BAD_DATA', `case ${raw.id}: label value ${label[i]} but the plan has ${K} classes`);
  const n = cshape[0] * cshape[1] * cshape[2];
  const needMask = plan.normalization.some((x) => x.useMaskForNorm);
  let mask: Uint8Array | null = null;
  if (needMask) {
    mask = new Uint8Array(n);
    for (let c = 0; c < C; c++) for (let i = 0; i < n; i++) if (image[c * n + i] !== 0) mask[i] = 1;
  }
  for (let c = 0; c < C; c++) normalizeChannel(image.subarray(c * n, (c + 1) * n), plan.normalization[c]!, mask);
  const r = resamplingFor(plan, raw.spacing, cshape);
  const data = resampleImage(image, C, cshape, r.newShape, r.image);
  if (label) label = resampleLabel(label, cshape, r.newShape, K, r.label);
  const spacing = (plan.dims === '2d' ? [raw.spacing[0], plan.targetSpacing[1], plan.targetSpacing[2]] : [...plan.targetSpacing]) as Zyx;
  const properties: CaseProperties = {
    original: raw.geometry,
    originalShape: raw.shape,
    originalSpacing: raw.spacing,
    cropBox: box,
    croppedShape: cshape,
  };
  if (label) properties.classLocations = classLocations(label, r.newShape, K, o.seed ?? 1234);
  return { id: raw.id, data, label, channels: C, shape: r.newShape, spacing, properties };
}

export type RevertInput = { probabilities: Float32Array; numClasses: number } | { label: Uint8Array } | { maps: Float32Array; channels: number };

/**
 * Maps a prediction in preprocessed space (shape `shape`) back onto the
 * original image grid: resample to the cropped shape (probabilities: linear /
 * nearest along a separate axis, as nnU-Net; labels: one-hot + argmax), then
 * put the crop back (outside: background, probability 1 for class 0; other
 * maps, such as uncertainty: 0).
 */
export function revertPreprocessing(input: RevertInput, shape: Zyx, properties: CaseProperties, plan: PlanPart): Float32Array | Uint8Array {
  const cs = properties.croppedShape;
  const r = resamplingFor(plan, properties.originalSpacing, cs);
  if (r.newShape.some((s, i) => s !== shape[i])) {
    throw new MedsegIoError('BAD_DATA', `prediction shape ${shape.join('x')} is not the preprocessed shape ${r.newShape.join('x')} of this case`);
  }
  const [OZ, OY, OX] = properties.originalShape;
  const on = OZ * OY * OX;
  const [[z0], [y0], [x0]] = properties.cropBox as Box;
  const place = (dst: Float32Array | Uint8Array, src: Float32Array | Uint8Array, ch: number) => {
    for (let z = 0; z < cs[0]; z++) {
      for (let y = 0; y < cs[1]; y++) {
        const s = ((ch * cs[0] + z) * cs[1] + y) * cs[2];
        dst.set(src.subarray(s, s + cs[2]), ((ch * OZ + z + z0) * OY + y + y0) * OX + x0);
      }
    }
  };
  if ('label' in input) {
    let maxLabel = 0;
    for (let i = 0; i < input.label.length; i++) if (input.label[i]! > maxLabel) maxLabel = input.label[i]!;
    const back = resampleLabel(input.label, shape, cs, maxLabel + 1, r.label);
    const out = new Uint8Array(on);
    place(out, back, 0);
    return out;
  }
  if ('maps' in input) {
    const back = resampleImage(input.maps, input.channels, shape, cs, r.label);
    const out = new Float32Array(input.channels * on);
    for (let c = 0; c < input.channels; c++) place(out, back, c);
    return out;
  }
  const K = input.numClasses;
  const back = resampleImage(input.probabilities, K, shape, cs, r.label);
  const out = new Float32Array(K * on);
  out.fill(1, 0, on); // background outside the crop
  place(out, back, 0);
  for (let c = 1; c < K; c++) place(out, back, c);
  return out;
}

// ---------------------------------------------------------------- cache

interface CacheMeta {
  planHash: string;
  sources: { path: string; size: number; mtimeMs: number }[];
  id: string;
  channels: number;
  shape: Zyx;
  spacing: Zyx;
  hasLabel: boolean;
  properties: CaseProperties;
}

function sourcesOf(c: DatasetCase): CacheMeta['sources'] {
  return [...c.imagePaths, ...(c.labelPath ? [c.labelPath] : [])].map((p) => {
    const s = statSync(p);
    return { path: p, size: s.size, mtimeMs: s.mtimeMs };
  });
}

function cacheValid(dir: string, c: DatasetCase, hash: string): boolean {
  const mp = join(dir, `${c.id}.json`);
  if (!existsSync(mp) || !existsSync(join(dir, `${c.id}.bin`))) return false;
  try {
    const m = JSON.parse(readFileSync(mp, 'utf8')) as CacheMeta;
    return m.planHash === hash && JSON.stringify(m.sources) === JSON.stringify(sourcesOf(c));
  } catch {
    return false;
  }
}

/**
 * Preprocesses every training case into `dir` (skipping cases whose cache is
 * current). Returns the ids and how many were recomputed.
 */
export async function preprocessDataset(
  ds: Dataset,
  plan: PlanPart,
  dir: string,
  o: { onProgress?: (done: number, total: number) => void } = {},
): Promise<{ ids: string[]; computed: number }> {
  await mkdir(dir, { recursive: true });
  const hash = planHash(plan);
  let computed = 0;
  for (let k = 0; k < ds.training.length; k++) {
    const c = ds.training[k]!;
    if (!cacheValid(dir, c, hash)) {
      const pc = preprocessCase(await loadRawCase(c), plan);
      await savePreprocessed(dir, pc, hash, sourcesOf(c));
      computed++;
    }
    o.onProgress?.(k + 1, ds.training.length);
  }
  await writeFileAtomic(join(dir, 'plan-hash.txt'), hash + '\n');
  return { ids: ds.training.map((c) => c.id), computed };
}

export async function savePreprocessed(dir: string, pc: PreprocessedCase, hash: string, sources: CacheMeta['sources'] = []): Promise<void> {
  const bytes = new Uint8Array(pc.data.byteLength + (pc.label?.byteLength ?? 0));
  bytes.set(new Uint8Array(pc.data.buffer, pc.data.byteOffset, pc.data.byteLength), 0);
  if (pc.label) bytes.set(pc.label, pc.data.byteLength);
  // Binary first, JSON last: a JSON file only exists beside a complete binary.
  await writeFileAtomic(join(dir, `${pc.id}.bin`), bytes);
  const meta: CacheMeta = {
    planHash: hash,
    sources,
    id: pc.id,
    channels: pc.channels,
    shape: pc.shape,
    spacing: pc.spacing,
    hasLabel: !!pc.label,
    properties: pc.properties,
  };
  await writeFileAtomic(join(dir, `${pc.id}.json`), JSON.stringify(meta));
}

export async function loadPreprocessed(dir: string, id: string): Promise<PreprocessedCase> {
  const mp = join(dir, `${id}.json`);
  let meta: CacheMeta;
  let buf: Buffer;
  try {
    meta = JSON.parse(await readFile(mp, 'utf8')) as CacheMeta;
    buf = await readFile(join(dir, `${id}.bin`));
  } catch (e) {
    throw new MedsegIoError('NOT_FOUND', `preprocessed case ${id} is missing or unreadable (${(e as Error).message}): run preprocessing`, mp);
  }
  const n = meta.shape[0] * meta.shape[1] * meta.shape[2];
  const want = 4 * n * meta.channels + (meta.hasLabel ? n : 0);
  if (buf.length !== want) throw new MedsegIoError('TRUNCATED', `expected ${want} bytes, found ${buf.length}: run preprocessing again`, join(dir, `${id}.bin`));
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  const data = new Float32Array(ab, 0, n * meta.channels);
  const label = meta.hasLabel ? new Uint8Array(ab, 4 * n * meta.channels, n) : null;
  return { id: meta.id, data, label, channels: meta.channels, shape: meta.shape, spacing: meta.spacing, properties: meta.properties };
}
