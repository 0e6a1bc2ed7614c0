/**
 * From images on disk to what the network eats: the fingerprint of a dataset
 * (spacings, shapes, foreground intensities), per-case preprocessing
 * (normalise; resample to the plan's spacing when it differs) and its inverse
 * for predictions. Normalisation follows nnU-Net: CT clipped to the
 * foreground's [0.5, 99.5] percentiles and z-scored with the foreground
 * mean/std of the whole dataset; every other modality z-scored per image.
 */
import * as torch from '@medseg/torch';
import { readVolume } from '../io/read.ts';
import { castVolume, type Volume } from '../io/volume.ts';
import type { PreprocessedCase } from '../data/types.ts';
import type { RawCase, RawDataset } from './raw-dataset.ts';

export type Zyx = [number, number, number];

export interface Fingerprint {
  spacings: Zyx[];
  shapes: Zyx[];
  /** Per channel, over all foreground voxels (sampled): mean, std, p0.5, p99.5. */
  foreground: { mean: number; std: number; p005: number; p995: number }[];
  classVoxels: Record<number, number>;
}

export interface Normalization {
  scheme: 'zscore' | 'ct';
  mean?: number;
  std?: number;
  lo?: number;
  hi?: number;
}

export async function loadCase(c: RawCase): Promise<{ images: Volume[]; label: Volume | null }> {
  const images = await Promise.all(c.images.map((p) => readVolume(p)));
  const label = c.label ? await readVolume(c.label) : null;
  for (const im of images) {
    if (im.size.join() !== images[0]!.size.join()) throw new Error(`case ${c.id}: channels have different sizes`);
  }
  if (label && label.size.join() !== images[0]!.size.join()) {
    throw new Error(`case ${c.id}: label size [${label.size}] differs from image size [${images[0]!.size}]`);
  }
  return { images, label };
}

const zyx = (v: [number, number, number]): Zyx => [v[2], v[1], v[0]];

function percentile(sorted: Float32Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export async function computeFingerprint(ds: RawDataset, onCase?: (i: number) => void): Promise<Fingerprint> {
  const spacings: Zyx[] = [];
  const shapes: Zyx[] = [];
  const samples: number[][] = ds.channels.map(() => []);
  const classVoxels: Record<number, number> = {};
  const perCase = 10000; // nnU-Net samples 10k foreground voxels per case
  for (let i = 0; i < ds.cases.length; i++) {
    const { images, label } = await loadCase(ds.cases[i]!);
    spacings.push(zyx(images[0]!.spacing));
    shapes.push(zyx(images[0]!.size));
    if (label) {
      const fg: number[] = [];
      for (let j = 0; j < label.data.length; j++) {
        const l = label.data[j]!;
        classVoxels[l] = (classVoxels[l] ?? 0) + 1;
        if (l > 0) fg.push(j);
      }
      const step = Math.max(1, Math.floor(fg.length / perCase));
      images.forEach((im, ch) => {
        for (let k = 0; k < fg.length; k += step) samples[ch]!.push(im.data[fg[k]!]!);
      });
    }
    onCase?.(i);
  }
  const foreground = samples.map((s) => {
    const a = Float32Array.from(s).sort();
    const mean = a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
    const std = Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, a.length));
    return { mean, std, p005: percentile(a, 0.005), p995: percentile(a, 0.995) };
  });
  return { spacings, shapes, foreground, classVoxels };
}

function normalize(data: Float32Array, n: Normalization): void {
  if (n.scheme === 'ct') {
    const lo = n.lo!;
    const hi = n.hi!;
    const mean = n.mean!;
    const std = Math.max(n.std!, 1e-8);
    for (let i = 0; i < data.length; i++) data[i] = (Math.min(hi, Math.max(lo, data[i]!)) - mean) / std;
    return;
  }
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i]!;
  const mean = s / data.length;
  let v = 0;
  for (let i = 0; i < data.length; i++) v += (data[i]! - mean) ** 2;
  const std = Math.max(Math.sqrt(v / data.length), 1e-8);
  for (let i = 0; i < data.length; i++) data[i] = (data[i]! - mean) / std;
}

function resampledShape(shape: Zyx, spacing: Zyx, target: Zyx): Zyx {
  return shape.map((s, i) => Math.max(1, Math.round((s * spacing[i]!) / target[i]!))) as Zyx;
}

/** Trilinear (images) or nearest (labels) resampling of a [C, Z, Y, X] array with torch. */
function resampleArray(data: Float32Array, channels: number, from: Zyx, to: Zyx, mode: 'linear' | 'nearest'): Float32Array {
  if (from.join() === to.join()) return data;
  return torch.tidy(() => {
    const t = torch.tensor(data, [1, channels, ...from]);
    const is2d = from[0] === 1 && to[0] === 1;
    const r = is2d
      ? torch.F.interpolate(t.squeeze(2), { size: to.slice(1), mode, alignCorners: mode === 'linear' ? false : undefined }).unsqueeze(2)
      : torch.F.interpolate(t, { size: to, mode, alignCorners: mode === 'linear' ? false : undefined });
    return r.contiguous().toTypedArray() as Float32Array;
  });
}

export function preprocessCase(
  id: string,
  images: Volume[],
  label: Volume | null,
  o: { targetSpacing: Zyx; normalization: Normalization[] },
): PreprocessedCase {
  const first = images[0]!;
  const shape = zyx(first.size);
  const spacing = zyx(first.spacing);
  const target = resampledShape(shape, spacing, o.targetSpacing);
  const n = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(images.length * n);
  images.forEach((im, c) => {
    const f = castVolume(im, 'float32').data as Float32Array;
    const chan = Float32Array.from(f.subarray(0, n));
    normalize(chan, o.normalization[c] ?? { scheme: 'zscore' });
    data.set(chan, c * n);
  });
  const resampled = resampleArray(data, images.length, shape, target, 'linear');
  let lab: Uint8Array | null = null;
  if (label) {
    const l = Float32Array.from(label.data as ArrayLike<number>);
    lab = Uint8Array.from(resampleArray(l, 1, shape, target, 'nearest'));
  }
  const { data: _d, ...geometry } = first;
  return {
    id,
    data: resampled,
    label: lab,
    channels: images.length,
    shape: target,
    spacing: target.join() === shape.join() ? spacing : o.targetSpacing,
    properties: {
      original: geometry,
      originalShape: shape,
      originalSpacing: spacing,
      cropBox: [
        [0, shape[0]],
        [0, shape[1]],
        [0, shape[2]],
      ],
      croppedShape: shape,
    },
  };
}

/** Class probabilities [K, Z, Y, X] in preprocessed space -> the original grid (trilinear), as a flat array. */
export function probabilitiesToOriginal(probs: Float32Array, numClasses: number, c: PreprocessedCase): Float32Array {
  return resampleArray(probs, numClasses, c.shape, c.properties.originalShape, 'linear');
}
