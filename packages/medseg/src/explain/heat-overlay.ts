/**
 * The PNG a reader looks at: a greyscale slice of the image, the heat map
 * blended over it in a black-red-yellow-white ramp (opacity grows with the
 * heat, so cold voxels show the anatomy), and the outline of the predicted
 * mask in sky blue. 3D cases show the slice with the largest predicted area
 * (or, when nothing is predicted, the most heat).
 */
import { encodePngPixels } from '../io/image2d-png.ts';
import { extractSlice, largestReferenceSlice, maskBoundary, REFERENCE_COLOR, type Axis } from '../eval/report/overlay.ts';
import { MedsegExplainError } from './errors.ts';

export interface HeatOverlayInput {
  /** Intensities, x-fastest. */
  image: ArrayLike<number>;
  /** Heat, x-fastest; only its positive part is shown, scaled by its maximum. */
  heat: ArrayLike<number>;
  /** Predicted mask (nonzero = inside). */
  mask: ArrayLike<number>;
  width: number;
  height: number;
  /** Integer upscaling; default makes the long side >= 256 px (at most 8). */
  scale?: number;
  /** Grey window [low, high] (default: the slice's 0.5th and 99.5th percentiles). */
  window?: [number, number];
  /** Heat shown at full colour (default: the slice's maximum). */
  heatMax?: number;
}

/** An overlay as pixels: RGB, pixel-interleaved, row 0 first. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** The heat colour ramp at t in [0, 1]: black -> red -> yellow -> white. */
export function heatColor(t: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, t)) * 3;
  return [Math.round(255 * Math.min(1, v)), Math.round(255 * Math.min(1, Math.max(0, v - 1))), Math.round(255 * Math.min(1, Math.max(0, v - 2)))];
}

function window(image: ArrayLike<number>): [number, number] {
  const v = Array.from(image)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (v.length === 0) return [0, 1];
  const lo = v[Math.round((v.length - 1) * 0.005)]!;
  const hi = v[Math.round((v.length - 1) * 0.995)]!;
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** PNG bytes (RGB) of one slice's overlay. */
export function renderHeatOverlayPng(input: HeatOverlayInput): Buffer {
  const { width, height, rgb } = renderHeatOverlayRgb(input);
  return encodePngPixels({ width, height, channels: 3, data: rgb });
}

/** One slice's overlay as RGB pixels. */
export function renderHeatOverlayRgb(input: HeatOverlayInput): RgbImage {
  const { width: w, height: h } = input;
  const n = w * h;
  if (input.image.length !== n || input.heat.length !== n || input.mask.length !== n) {
    throw new MedsegExplainError('BAD_OPTION', `overlay needs ${w}x${h} values of image, heat and mask`);
  }
  const scale = input.scale ?? Math.max(1, Math.min(8, Math.ceil(256 / Math.max(w, h))));
  const W = w * scale;
  const H = h * scale;
  const [lo, hi] = input.window ?? window(input.image);
  let max = input.heatMax ?? 0;
  if (input.heatMax === undefined) for (let i = 0; i < n; i++) if (input.heat[i]! > max) max = input.heat[i]!;
  const big = new Uint8Array(W * H);
  for (let Y = 0; Y < H; Y++) for (let X = 0; X < W; X++) big[Y * W + X] = input.mask[Math.floor(X / scale) + w * Math.floor(Y / scale)] ? 1 : 0;
  const edge = maskBoundary(big, W, H);
  const rgb = new Uint8Array(W * H * 3);
  for (let Y = 0; Y < H; Y++) {
    for (let X = 0; X < W; X++) {
      const src = Math.floor(X / scale) + w * Math.floor(Y / scale);
      const o = (Y * W + X) * 3;
      let px: readonly number[];
      if (edge[Y * W + X]) px = REFERENCE_COLOR;
      else {
        const v = input.image[src]!;
        const g = Number.isFinite(v) ? 255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0;
        const t = max > 0 ? Math.max(0, input.heat[src]!) / max : 0;
        const c = heatColor(t);
        const a = 0.7 * t;
        px = [0, 1, 2].map((k) => Math.round((1 - a) * g + a * c[k]!));
      }
      rgb[o] = px[0]!;
      rgb[o + 1] = px[1]!;
      rgb[o + 2] = px[2]!;
    }
  }
  return { width: W, height: H, rgb };
}

/**
 * Every axial slice's overlay at the image's own resolution, with one grey
 * window and one heat scale for the whole volume, so that slices compare
 * (a Secondary Capture series of the explanation).
 */
export function renderHeatOverlaySlices(
  image: ArrayLike<number>,
  heat: ArrayLike<number>,
  mask: ArrayLike<number>,
  size: [number, number, number],
): RgbImage[] {
  const [nx, ny, nz] = size;
  const plane = nx * ny;
  // The window's percentiles from at most about a million voxels: a CT series holds tens of millions.
  const stride = Math.max(1, Math.floor(image.length / 1_000_000));
  const grey = window(stride === 1 ? image : Array.from({ length: Math.floor(image.length / stride) }, (_, i) => image[i * stride]!));
  let heatMax = 0;
  for (let i = 0; i < heat.length; i++) if (heat[i]! > heatMax) heatMax = heat[i]!;
  const slice = (a: ArrayLike<number>, z: number) => Array.prototype.slice.call(a, z * plane, (z + 1) * plane) as number[];
  return Array.from({ length: nz }, (_, z) =>
    renderHeatOverlayRgb({ image: slice(image, z), heat: slice(heat, z), mask: slice(mask, z), width: nx, height: ny, scale: 1, window: grey, heatMax }),
  );
}

/** The overlay of a volume (x-fastest, size [x, y, z]) at the slice along `axis` with the largest mask area, else the most heat. */
export function renderVolumeHeatOverlayPng(
  image: ArrayLike<number>,
  heat: ArrayLike<number>,
  mask: ArrayLike<number>,
  size: [number, number, number],
  axis: Axis = 2,
): { png: Buffer; axis: Axis; index: number } {
  let any = false;
  for (let i = 0; i < mask.length && !any; i++) any = mask[i] !== 0;
  let index: number;
  if (any) index = largestReferenceSlice(mask, size, axis);
  else {
    const [nx, ny, nz] = size;
    const mass = new Float64Array(size[axis]);
    for (let z = 0, i = 0; z < nz; z++)
      for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++, i++) mass[axis === 0 ? x : axis === 1 ? y : z]! += Math.max(0, heat[i]!);
    index = mass.indexOf(Math.max(...mass));
  }
  const img = extractSlice(image, size, axis, index);
  const png = renderHeatOverlayPng({
    image: img.data,
    heat: extractSlice(heat, size, axis, index).data,
    mask: extractSlice(mask, size, axis, index).data,
    width: img.width,
    height: img.height,
  });
  return { png, axis, index };
}
