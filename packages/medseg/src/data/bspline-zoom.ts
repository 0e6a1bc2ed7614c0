/**
 * Cubic B-spline resampling along one axis of a [nz, ny, nx] array (x
 * fastest), as scipy.ndimage.zoom(order=3, mode='reflect', grid_mode=True)
 * does it: the samples are first turned into B-spline coefficients (the
 * inverse of the B-spline's sampled kernel [1 4 1]/6, a causal and an
 * anticausal recursion with the pole sqrt(3) - 2 run over the half-sample
 * symmetric extension of the line), then output sample o is read at input
 * coordinate (o + 0.5) n/m - 0.5, so that the first and last sample edges of
 * input (n samples) and output (m) coincide: m slices of thickness n/m
 * replace the n input slices.
 */
import { reflectIndex } from '../eval/image-quality.ts';
import type { VolumeAxis } from '../plan/enhance-settings.ts';
import type { Array3, Shape3 } from './thick-slices.ts';

const POLE = Math.sqrt(3) - 2;
/** Samples of symmetric extension run through the recursions before the line starts: |pole|^40 < 1e-22. */
const PAD = 40;

/** B-spline coefficients of one line under half-sample symmetric extension. */
export function bsplineCoefficients(line: ArrayLike<number>): Float64Array {
  const n = line.length;
  const len = n + 2 * PAD;
  const c = new Float64Array(len);
  for (let k = 0; k < len; k++) c[k] = 6 * line[reflectIndex(k - PAD, n)]!;
  for (let k = 1; k < len; k++) c[k] = c[k]! + POLE * c[k - 1]!;
  c[len - 1] = (POLE / (POLE * POLE - 1)) * c[len - 1]!;
  for (let k = len - 2; k >= 0; k--) c[k] = POLE * (c[k + 1]! - c[k]!);
  return c.slice(PAD, PAD + n);
}

function cubicBSpline(t: number): number {
  const a = Math.abs(t);
  if (a < 1) return 2 / 3 - a * a + (a * a * a) / 2;
  if (a < 2) return (2 - a) ** 3 / 6;
  return 0;
}

/** Output length of a zoom by `factor`: round(n factor), as scipy rounds. */
export function zoomedLength(n: number, factor: number): number {
  return Math.round(n * factor);
}

/** `data` of shape [nz, ny, nx] resampled along `axis` (0 = z) to round(n factor) samples. */
export function zoomAxis(data: ArrayLike<number>, shape: Readonly<Shape3>, axis: VolumeAxis, factor: number): Array3 {
  if (!(factor > 0)) throw new RangeError(`zoom factor must be > 0, got ${factor}`);
  const n = shape[axis];
  const m = zoomedLength(n, factor);
  const outShape = [...shape] as Shape3;
  outShape[axis] = m;
  const inStrides = [shape[1] * shape[2], shape[2], 1];
  const outStrides = [outShape[1] * outShape[2], outShape[2], 1];
  // the four taps of every output sample
  const taps = Array.from({ length: m }, (_, o) => {
    const x = ((o + 0.5) * n) / m - 0.5;
    const k0 = Math.floor(x) - 1;
    return Array.from({ length: 4 }, (_, j) => ({ index: reflectIndex(k0 + j, n), weight: cubicBSpline(x - (k0 + j)) }));
  });
  const out = new Float32Array(outShape[0] * outShape[1] * outShape[2]);
  const others = [0, 1, 2].filter((a) => a !== axis) as [VolumeAxis, VolumeAxis];
  const line = new Float64Array(n);
  for (let u = 0; u < shape[others[0]]; u++) {
    for (let v = 0; v < shape[others[1]]; v++) {
      const inBase = u * inStrides[others[0]]! + v * inStrides[others[1]]!;
      const outBase = u * outStrides[others[0]]! + v * outStrides[others[1]]!;
      for (let i = 0; i < n; i++) line[i] = data[inBase + i * inStrides[axis]!]!;
      const c = bsplineCoefficients(line);
      for (let o = 0; o < m; o++) {
        let s = 0;
        for (const t of taps[o]!) s += t.weight * c[t.index]!;
        out[outBase + o * outStrides[axis]!] = s;
      }
    }
  }
  return { data: out, shape: outShape };
}
