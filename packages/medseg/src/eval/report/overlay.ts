/**
 * PNG overlays for qualitative review: a greyscale image slice with the
 * reference and predicted segmentation outlines in two colours.
 */
import { encodePngPixels } from '../../io/image2d-png.ts';
import { MedsegStatsError } from '../statistics/errors.ts';

type LabelArray = ArrayLike<number>;

/** Okabe–Ito sky blue (reference) and orange (prediction): distinct for colour-blind readers and on grey. */
export const REFERENCE_COLOR: [number, number, number] = [86, 180, 233];
export const PREDICTION_COLOR: [number, number, number] = [230, 159, 0];

export interface OverlayInput {
  /** Intensities, x-fastest: value (x, y) at image[x + width * y]. */
  image: ArrayLike<number>;
  reference: LabelArray;
  prediction: LabelArray;
  width: number;
  height: number;
  /** Outline only this label value (default: every nonzero voxel is foreground). */
  label?: number;
  /** Display window [low, high]; default the 0.5–99.5 percentiles of the slice. */
  window?: [number, number];
  /** Integer upscaling (nearest neighbour) so thin outlines stay readable; default makes the long side ≥ 256 px, at most 8. */
  scale?: number;
  /**
   * Integer downsampling before drawing (default 1): block mean of the image,
   * and a block counts as foreground when any pixel in it is, so vessels one
   * pixel wide keep an outline. Keeps a report of many full-size photographs
   * (DRIVE: 565x584, ~0.5 MB per PNG) small enough to commit and open.
   */
  downsample?: number;
  /** Grey levels shown (default 256). Fewer levels compress several times better in PNG; 32 still reads as a photograph. */
  greyLevels?: number;
  /** Flip vertically (row 0 at the bottom), as radiological display of axial slices often needs. */
  flipY?: boolean;
  referenceColor?: [number, number, number];
  predictionColor?: [number, number, number];
}

const MAX_PIXELS = 4096 * 4096;

function check(input: OverlayInput): void {
  const { width, height } = input;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new MedsegStatsError('BAD_INPUT', `overlay size must be positive integers, got ${width}×${height}`);
  }
  const n = width * height;
  for (const [name, a] of [
    ['image', input.image],
    ['reference', input.reference],
    ['prediction', input.prediction],
  ] as const) {
    if (a.length !== n) throw new MedsegStatsError('BAD_INPUT', `overlay ${name} has ${a.length} values, expected ${width}×${height} = ${n}`);
  }
}

/** Mask of one label (or any nonzero) at integer upscale. */
function upscaledMask(labels: LabelArray, w: number, h: number, s: number, label?: number): Uint8Array {
  const W = w * s;
  const out = new Uint8Array(W * h * s);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = labels[x + w * y]!;
      if (label === undefined ? v === 0 : v !== label) continue;
      for (let dy = 0; dy < s; dy++) out.fill(1, (y * s + dy) * W + x * s, (y * s + dy) * W + x * s + s);
    }
  }
  return out;
}

/**
 * Inner boundary of a binary mask: foreground pixels with a 4-neighbour in the
 * background or on the image border (mask AND NOT erosion, with the border
 * treated as background).
 */
export function maskBoundary(mask: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = x + w * y;
      if (!mask[i]) continue;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w]) out[i] = 1;
    }
  }
  return out;
}

function autoWindow(image: ArrayLike<number>): [number, number] {
  const v: number[] = [];
  for (let i = 0; i < image.length; i++) if (Number.isFinite(image[i]!)) v.push(image[i]!);
  if (v.length === 0) return [0, 1];
  v.sort((a, b) => a - b);
  const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.round((v.length - 1) * p)))]!;
  const lo = q(0.005);
  const hi = q(0.995);
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** Block-reduces image (mean) and labels (any voxel of `label`, or nonzero) by an integer factor. */
function downsampled(input: OverlayInput, f: number): OverlayInput {
  const { width: w, height: h } = input;
  const W = Math.ceil(w / f);
  const H = Math.ceil(h / f);
  const image = new Float32Array(W * H);
  const count = new Uint16Array(W * H);
  const reference = new Uint8Array(W * H);
  const prediction = new Uint8Array(W * H);
  const fg = (v: number) => (input.label === undefined ? v !== 0 : v === input.label);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = x + w * y;
      const o = Math.floor(x / f) + W * Math.floor(y / f);
      const v = input.image[i]!;
      if (Number.isFinite(v)) {
        image[o]! += v;
        count[o]!++;
      }
      if (fg(input.reference[i]!)) reference[o] = 1;
      if (fg(input.prediction[i]!)) prediction[o] = 1;
    }
  }
  for (let o = 0; o < W * H; o++) image[o] = count[o] ? image[o]! / count[o]! : Number.NaN;
  return { ...input, image, reference, prediction, width: W, height: H, label: 1, downsample: 1, window: input.window ?? autoWindow(input.image) };
}

/** Render the overlay and return PNG bytes (RGB, 8-bit). */
export function renderOverlayPng(input: OverlayInput): Buffer {
  check(input);
  const f = input.downsample ?? 1;
  if (!Number.isInteger(f) || f < 1) throw new MedsegStatsError('BAD_INPUT', `overlay downsample must be a positive integer, got ${f}`);
  if (f > 1) return renderOverlayPng(downsampled(input, f));
  const levels = input.greyLevels ?? 256;
  if (!Number.isInteger(levels) || levels < 2 || levels > 256)
    throw new MedsegStatsError('BAD_INPUT', `overlay greyLevels must be an integer in 2..256, got ${levels}`);
  const { width: w, height: h } = input;
  const scale = input.scale ?? Math.max(1, Math.min(8, Math.ceil(256 / Math.max(w, h))));
  if (!Number.isInteger(scale) || scale < 1) throw new MedsegStatsError('BAD_INPUT', `overlay scale must be a positive integer, got ${scale}`);
  const W = w * scale;
  const H = h * scale;
  if (W * H > MAX_PIXELS) throw new MedsegStatsError('BAD_INPUT', `overlay of ${W}×${H} px is too large; lower the scale`);
  const [lo, hi] = input.window ?? autoWindow(input.image);
  const refEdge = maskBoundary(upscaledMask(input.reference, w, h, scale, input.label), W, H);
  const predEdge = maskBoundary(upscaledMask(input.prediction, w, h, scale, input.label), W, H);
  const rc = input.referenceColor ?? REFERENCE_COLOR;
  const pc = input.predictionColor ?? PREDICTION_COLOR;
  const rgbData = new Uint8Array(W * H * 3);
  for (let Y = 0; Y < H; Y++) {
    const srcY = input.flipY ? H - 1 - Y : Y;
    for (let X = 0; X < W; X++) {
      const src = srcY * W + X;
      const o = (Y * W + X) * 3;
      let rgb: readonly number[];
      // prediction drawn over reference: where they coincide the prediction follows the truth exactly
      if (predEdge[src]) rgb = pc;
      else if (refEdge[src]) rgb = rc;
      else {
        const v = input.image[Math.floor(X / scale) + w * Math.floor(srcY / scale)]!;
        const g = Number.isFinite(v) ? Math.round((Math.round(Math.min(1, Math.max(0, (v - lo) / (hi - lo))) * (levels - 1)) * 255) / (levels - 1)) : 0;
        rgb = [g, g, g];
      }
      rgbData[o] = rgb[0]!;
      rgbData[o + 1] = rgb[1]!;
      rgbData[o + 2] = rgb[2]!;
    }
  }
  return encodePngPixels({ width: W, height: H, channels: 3, data: rgbData });
}

// ---------------------------------------------------------------- 3D helpers

export type Axis = 0 | 1 | 2;

/**
 * Index of the slice along `axis` with the largest reference area (voxels of
 * `label`, or nonzero). Ties go to the lowest index; an empty reference gives
 * the middle slice. Volumes are x-fastest: (x, y, z) at x + nx*(y + ny*z).
 */
export function largestReferenceSlice(labels: LabelArray, size: [number, number, number], axis: Axis = 2, label?: number): number {
  const [nx, ny, nz] = size;
  if (labels.length !== nx * ny * nz) {
    throw new MedsegStatsError('BAD_INPUT', `label volume has ${labels.length} voxels, expected ${nx}×${ny}×${nz}`);
  }
  const counts = new Float64Array(size[axis]);
  let i = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        const v = labels[i]!;
        if (label === undefined ? v !== 0 : v === label) counts[axis === 0 ? x : axis === 1 ? y : z]!++;
      }
    }
  }
  let best = -1;
  let bestCount = 0;
  counts.forEach((c, k) => {
    if (c > bestCount) {
      bestCount = c;
      best = k;
    }
  });
  return best >= 0 ? best : Math.floor(size[axis] / 2);
}

/**
 * A 2D slice of an x-fastest volume. Axis 2 (axial for RAS/LPS volumes) gives
 * width nx, height ny; axis 1 gives nx × nz; axis 0 gives ny × nz.
 */
export function extractSlice<T extends ArrayLike<number>>(
  data: T,
  size: [number, number, number],
  axis: Axis,
  index: number,
): { data: Float32Array; width: number; height: number } {
  const [nx, ny, nz] = size;
  if (data.length < nx * ny * nz) throw new MedsegStatsError('BAD_INPUT', `volume has ${data.length} voxels, expected ${nx * ny * nz}`);
  if (!Number.isInteger(index) || index < 0 || index >= size[axis]) {
    throw new MedsegStatsError('BAD_INPUT', `slice ${index} out of range 0..${size[axis] - 1} on axis ${axis}`);
  }
  const [w, h] = axis === 2 ? [nx, ny] : axis === 1 ? [nx, nz] : [ny, nz];
  const out = new Float32Array(w * h);
  for (let b = 0; b < h; b++) {
    for (let a = 0; a < w; a++) {
      const [x, y, z] = axis === 2 ? [a, b, index] : axis === 1 ? [a, index, b] : [index, a, b];
      out[a + w * b] = data[x + nx * (y + ny * z)]!;
    }
  }
  return { data: out, width: w, height: h };
}

/** Overlay of a 3D case at the slice through the largest reference area. */
export function renderVolumeOverlayPng(
  image: ArrayLike<number>,
  reference: LabelArray,
  prediction: LabelArray,
  size: [number, number, number],
  opts: Omit<OverlayInput, 'image' | 'reference' | 'prediction' | 'width' | 'height'> & { axis?: Axis } = {},
): { png: Buffer; axis: Axis; index: number } {
  const axis = opts.axis ?? 2;
  const index = largestReferenceSlice(reference, size, axis, opts.label);
  const img = extractSlice(image, size, axis, index);
  const ref = extractSlice(reference, size, axis, index);
  const pred = extractSlice(prediction, size, axis, index);
  const png = renderOverlayPng({ ...opts, image: img.data, reference: ref.data, prediction: pred.data, width: img.width, height: img.height });
  return { png, axis, index };
}
