/**
 * The pure steps of preprocessing at the plan's spacing: crop to the nonzero
 * bounding box and normalise each channel per the plan. No Node modules, so
 * a web page (deploy/browser/) runs the very same code on its volumes.
 */
import type { ChannelNormalization } from '../plan/types.ts';
import type { Zyx } from './axes.ts';

/** [start, end) per axis, [z, y, x]. */
export type Box = [[number, number], [number, number], [number, number]];

/**
 * Bounding box [start, end) per axis of the voxels nonzero in any channel
 * (nnU-Net's crop_to_nonzero). An all-zero image keeps its full extent.
 */
export function nonzeroBox(image: Float32Array, channels: number, shape: Zyx): Box {
  const [Z, Y, X] = shape;
  const n = Z * Y * X;
  let z0 = Z,
    z1 = -1,
    y0 = Y,
    y1 = -1,
    x0 = X,
    x1 = -1;
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      const row = (z * Y + y) * X;
      for (let x = 0; x < X; x++) {
        let nz = false;
        for (let c = 0; c < channels && !nz; c++) nz = image[c * n + row + x] !== 0;
        if (!nz) continue;
        if (z < z0) z0 = z;
        if (z > z1) z1 = z;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
  }
  if (z1 < 0)
    return [
      [0, Z],
      [0, Y],
      [0, X],
    ];
  return [
    [z0, z1 + 1],
    [y0, y1 + 1],
    [x0, x1 + 1],
  ];
}

/** Copies the box out of a [C, Z, Y, X] array (C = 1 for labels). */
export function cropArray<T extends Float32Array | Uint8Array>(a: T, channels: number, shape: Zyx, box: Box): T {
  const [Z, Y, X] = shape;
  const [[z0, z1], [y0, y1], [x0, x1]] = box;
  const cz = z1 - z0,
    cy = y1 - y0,
    cx = x1 - x0;
  const out = new (a.constructor as new (n: number) => T)(channels * cz * cy * cx);
  let o = 0;
  for (let c = 0; c < channels; c++) {
    for (let z = z0; z < z1; z++) {
      for (let y = y0; y < y1; y++) {
        const s = ((c * Z + z) * Y + y) * X;
        out.set(a.subarray(s + x0, s + x1), o);
        o += cx;
      }
    }
  }
  return out;
}

export function boxShape(box: Box): Zyx {
  return [box[0][1] - box[0][0], box[1][1] - box[1][0], box[2][1] - box[2][0]];
}

/** Normalises one channel in place per the plan (mask: the nonzero mask, when some channel uses it). */
export function normalizeChannel(x: Float32Array, norm: ChannelNormalization, mask: Uint8Array | null): void {
  const n = x.length;
  switch (norm.scheme) {
    case 'none':
      return;
    case 'rgb01':
      for (let i = 0; i < n; i++) x[i]! /= 255;
      return;
    case 'rescale01': {
      let lo = Infinity,
        hi = -Infinity;
      for (let i = 0; i < n; i++) {
        lo = Math.min(lo, x[i]!);
        hi = Math.max(hi, x[i]!);
      }
      const r = Math.max(hi - lo, 1e-8);
      for (let i = 0; i < n; i++) x[i] = (x[i]! - lo) / r;
      return;
    }
    case 'ct': {
      const [lo, hi] = norm.clip!;
      const std = Math.max(norm.std!, 1e-8);
      for (let i = 0; i < n; i++) x[i] = (Math.min(hi, Math.max(lo, x[i]!)) - norm.mean!) / std;
      return;
    }
    case 'zscore': {
      const use = norm.useMaskForNorm && mask;
      let s = 0,
        cnt = 0;
      for (let i = 0; i < n; i++)
        if (!use || mask[i]) {
          s += x[i]!;
          cnt++;
        }
      const mean = cnt ? s / cnt : 0;
      let ss = 0;
      for (let i = 0; i < n; i++) if (!use || mask[i]) ss += (x[i]! - mean) ** 2;
      const std = Math.max(Math.sqrt(cnt ? ss / cnt : 0), 1e-8);
      for (let i = 0; i < n; i++) x[i] = use && !mask[i] ? 0 : (x[i]! - mean) / std;
      return;
    }
  }
}
