/**
 * Image-level labelled data for classification: a split of a MedMNIST-style
 * .npz (<split>_images uint8 [N, H, W] or [N, D, H, W], optionally with a
 * trailing channel axis; <split>_labels [N] or [N, 1]), class-balanced
 * sampling, the X-ray augmentation, and batches as plain arrays.
 *
 * Intensities are scaled to [0, 1] (uint8 / 255) for augmentation (zero
 * padding outside the image is black, like the film's border) and centred to
 * [-1, 1] in the batch, as MedMNIST's Normalize(0.5, 0.5) does.
 */
import { MedsegIoError } from '../io/errors.ts';
import { readNpz, type NpzReadOptions } from '../io/npz.ts';
import type { NpyArray } from '../io/npy.ts';
import type { AugmentationParams } from '../plan/types.ts';
import { mixSeed, Rng } from '../util/random.ts';
import { augmentSample } from './augment.ts';

export interface ClassificationSet {
  /** Images in [0, 1], case-major: case i's voxels at i * channels * prod(shape). */
  images: Float32Array;
  labels: Int32Array;
  /** Spatial shape [H, W] or [D, H, W]. */
  shape: number[];
  channels: number;
}

export type Split = 'train' | 'val' | 'test';

const voxels = (s: ClassificationSet) => s.channels * s.shape.reduce((a, b) => a * b, 1);

/** The number of cases of a set. */
export const caseCount = (s: ClassificationSet): number => s.labels.length;

function toNumbers(a: NpyArray): Float64Array {
  return Float64Array.from(a.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * A set from image and label arrays. Images: uint8 or float [N, ...spatial]
 * or [N, ...spatial, C]; labels [N] or [N, 1].
 */
export function classificationSetFromArrays(images: NpyArray, labels: NpyArray, path?: string): ClassificationSet {
  const n = images.shape[0] ?? 0;
  if (images.shape.length < 3 || images.shape.length > 5) {
    throw new MedsegIoError('BAD_DATA', `images must be [N, H, W], [N, D, H, W] or with a channel axis last, got (${images.shape.join(', ')})`, path);
  }
  if (labels.shape[0] !== n || labels.shape.slice(1).some((d) => d !== 1)) {
    throw new MedsegIoError('BAD_DATA', `labels (${labels.shape.join(', ')}) do not give one class per image of (${images.shape.join(', ')})`, path);
  }
  const last = images.shape.at(-1)!;
  // [N, H, W]: 2D grey; [N, H, W, C] with C of 1, 3 or 4 and smaller than H and W: 2D with channels (grey, RGB, RGBA);
  // other [N, D, H, W]: 3D grey; [N, D, H, W, C]: 3D with channels.
  const channelsLast =
    images.shape.length === 5 || (images.shape.length === 4 && [1, 3, 4].includes(last) && last < Math.min(images.shape[1]!, images.shape[2]!));
  const shape = channelsLast ? images.shape.slice(1, -1) : images.shape.slice(1);
  const channels = channelsLast ? last : 1;
  const scale = images.dtype === 'uint8' ? 1 / 255 : 1;
  const src = images.data as ArrayLike<number>;
  const v = channels * shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * v);
  if (channelsLast) {
    const per = v / channels;
    for (let i = 0; i < n; i++)
      for (let p = 0; p < per; p++) for (let c = 0; c < channels; c++) out[i * v + c * per + p] = src[i * v + p * channels + c]! * scale;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = src[i]! * scale;
  }
  const lab = toNumbers(labels);
  if (!lab.every((y) => Number.isInteger(y) && y >= 0)) throw new MedsegIoError('BAD_DATA', 'labels must be non-negative class indices', path);
  return { images: out, labels: Int32Array.from(lab), shape, channels };
}

/** One split of a MedMNIST-style .npz; `limit` keeps the first cases of each class in turn (a small balanced subset for tests). */
export function readClassificationNpz(path: string, split: Split, o: NpzReadOptions & { limit?: number } = {}): ClassificationSet {
  const keys = [`${split}_images`, `${split}_labels`];
  const arrays = readNpz(path, { ...o, keys });
  const set = classificationSetFromArrays(arrays.get(keys[0]!)!, arrays.get(keys[1]!)!, path);
  return o.limit !== undefined ? subset(set, firstPerClass(set.labels, o.limit)) : set;
}

/** Up to `limit` case indices, alternating between classes, in the order the cases come. */
function firstPerClass(labels: Int32Array, limit: number): number[] {
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => byClass.set(y, [...(byClass.get(y) ?? []), i]));
  const lists = [...byClass.entries()].sort(([a], [b]) => a - b).map(([, l]) => l);
  const out: number[] = [];
  for (let r = 0; out.length < Math.min(limit, labels.length); r++) for (const l of lists) if (r < l.length && out.length < limit) out.push(l[r]!);
  return out.sort((a, b) => a - b);
}

/** The cases at `indices`, in that order. */
export function subset(s: ClassificationSet, indices: number[]): ClassificationSet {
  const v = voxels(s);
  const images = new Float32Array(indices.length * v);
  indices.forEach((i, j) => images.set(s.images.subarray(i * v, (i + 1) * v), j * v));
  return { images, labels: Int32Array.from(indices, (i) => s.labels[i]!), shape: s.shape, channels: s.channels };
}

/** Cases per class (index = class). */
export function classCounts(labels: Int32Array, numClasses: number): number[] {
  const c = new Array<number>(numClasses).fill(0);
  for (const y of labels) c[y]!++;
  return c;
}

/**
 * Batch `iteration` of `epoch`: `batchSize` case indices drawn with
 * replacement, each class equally likely (class-balanced) or each case
 * equally likely. A pure function of (seed, epoch, iteration), so a resumed
 * run draws what the uninterrupted one would have.
 */
export function sampleBatchIndices(labels: Int32Array, batchSize: number, balanced: boolean, seed: number, epoch: number, iteration: number): number[] {
  const rng = new Rng(mixSeed(seed, epoch, iteration));
  if (!balanced) return Array.from({ length: batchSize }, () => rng.int(labels.length));
  const byClass: number[][] = [];
  labels.forEach((y, i) => (byClass[y] ??= []).push(i));
  const present = byClass.filter((l) => l && l.length > 0);
  return Array.from({ length: batchSize }, () => {
    const l = present[rng.int(present.length)]!;
    return l[rng.int(l.length)]!;
  });
}

/**
 * Augmentation for radiographs: small rotations (±10°) and scaling
 * (0.9-1.1), mild noise, blur, brightness, contrast and gamma, horizontal
 * flips only when `horizontalFlip` (never vertical: a chest film is not seen
 * upside down); no elastic deformation or simulated low resolution.
 */
export function xrayAugmentation(dims: 2 | 3, horizontalFlip: boolean): AugmentationParams {
  return {
    rotation: { p: 0.5, maxDegrees: dims === 2 ? [10] : [10, 0, 0] },
    scaling: { p: 0.5, range: [0.9, 1.1] },
    elastic: { p: 0, alpha: [0, 0], sigma: [1, 1] },
    mirror: { p: horizontalFlip ? 0.5 : 0, axes: horizontalFlip ? [dims - 1] : [] },
    noise: { p: 0.1, variance: [0, 0.002] },
    blur: { p: 0.1, sigma: [0.5, 1] },
    brightness: { p: 0.3, range: [0.85, 1.15] },
    contrast: { p: 0.3, range: [0.8, 1.2] },
    lowResolution: { p: 0, zoom: [1, 1], ignoreAxes: [] },
    gamma: { p: 0.3, range: [0.8, 1.25], pInvert: 0 },
    dummy2d: false,
    transpose: { p: 0 },
  };
}

/** The network input of cases `indices`: [B, C, ...shape] values centred to [-1, 1], augmented when `aug` is given. */
export function batchArrays(
  s: ClassificationSet,
  indices: number[],
  aug: { params: AugmentationParams; seed: number } | null,
): { image: Float32Array; label: BigInt64Array; shape: number[] } {
  const v = voxels(s);
  const image = new Float32Array(indices.length * v);
  indices.forEach((i, j) => {
    let x = s.images.subarray(i * v, (i + 1) * v);
    if (aug) x = augmentSample({ image: x, label: null, channels: s.channels, shape: s.shape }, aug.params, new Rng(mixSeed(aug.seed, j))).image;
    for (let k = 0; k < v; k++) image[j * v + k] = (x[k]! - 0.5) * 2;
  });
  return { image, label: BigInt64Array.from(indices, (i) => BigInt(s.labels[i]!)), shape: [indices.length, s.channels, ...s.shape] };
}
