/**
 * Separable resampling of C-order [C, Z, Y, X] arrays, one axis at a time.
 * Output voxel i of an axis of n -> m voxels samples input coordinate
 * (i + 0.5) * n / m - 0.5 (voxel centres aligned, as skimage.resize /
 * nnU-Net). Kernels per axis:
 * - 'bspline3': cubic B-spline interpolation (nnU-Net's order 3): Unser's
 *   recursive prefilter (pole sqrt(3) - 2) then the cubic B-spline kernel,
 *   mirror boundary, exactly scipy.ndimage's order-3 'mirror' spline. A
 *   tensor-product spline is separable, so axis-by-axis equals the 3D spline.
 * - 'linear': linear interpolation, coordinates clamped to the edge.
 * - 'nearest': the nearest input voxel (nnU-Net's order 0 along a much
 *   coarser axis, "separate z").
 * Labels: one-hot per class, resampled with the float kernel, then argmax.
 */
export type Kernel = 'bspline3' | 'linear' | 'nearest';

const POLE = Math.sqrt(3) - 2;

function mirror(j: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let k = Math.abs(j) % period;
  if (k >= n) k = period - k;
  return k;
}

/** In-place B-spline coefficients of a line (mirror boundary). */
function prefilter(c: Float64Array, n: number): void {
  if (n === 1) return;
  const z = POLE;
  for (let k = 0; k < n; k++) c[k]! *= (1 - z) * (1 - 1 / z);
  // Causal initialisation for mirror boundaries (exact sum over the period).
  let sum = c[0]!;
  let zn = z;
  const z2n = Math.pow(z, 2 * n - 2);
  let iz = z2n / z;
  for (let k = 1; k < n - 1; k++) {
    sum += (zn + iz) * c[k]!;
    zn *= z;
    iz /= z;
  }
  sum += zn * c[n - 1]!;
  c[0] = sum / (1 - z2n);
  for (let k = 1; k < n; k++) c[k]! += z * c[k - 1]!;
  c[n - 1] = (z / (z * z - 1)) * (c[n - 1]! + z * c[n - 2]!);
  for (let k = n - 2; k >= 0; k--) c[k] = z * (c[k + 1]! - c[k]!);
}

function bspline3(t: number): number {
  const a = Math.abs(t);
  if (a < 1) return 2 / 3 - a * a + (a * a * a) / 2;
  if (a < 2) return (2 - a) ** 3 / 6;
  return 0;
}

interface Taps {
  idx: Int32Array;
  w: Float64Array;
  k: number;
}

function taps(n: number, m: number, kernel: Kernel): Taps {
  const k = kernel === 'bspline3' ? 4 : kernel === 'linear' ? 2 : 1;
  const idx = new Int32Array(m * k);
  const w = new Float64Array(m * k);
  const scale = n / m;
  for (let i = 0; i < m; i++) {
    const x = (i + 0.5) * scale - 0.5;
    if (kernel === 'nearest') {
      idx[i] = Math.min(n - 1, Math.max(0, Math.round(x)));
      w[i] = 1;
    } else if (kernel === 'linear') {
      const xc = Math.min(n - 1, Math.max(0, x));
      const x0 = Math.floor(xc);
      const x1 = Math.min(n - 1, x0 + 1);
      idx[2 * i] = x0;
      idx[2 * i + 1] = x1;
      w[2 * i] = 1 - (xc - x0);
      w[2 * i + 1] = xc - x0;
    } else {
      const f = Math.floor(x);
      for (let t = 0; t < 4; t++) {
        const j = f - 1 + t;
        idx[4 * i + t] = mirror(j, n);
        w[4 * i + t] = bspline3(x - j);
      }
    }
  }
  return { idx, w, k };
}

/** Resamples one axis of an array whose shape is given (any rank). */
export function resampleAxis(src: Float32Array, shape: number[], axis: number, m: number, kernel: Kernel): Float32Array {
  const n = shape[axis]!;
  if (n === m) return src;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * m * inner);
  const t = taps(n, m, kernel);
  const line = new Float64Array(n);
  for (let o = 0; o < outer; o++) {
    for (let q = 0; q < inner; q++) {
      const base = o * n * inner + q;
      for (let j = 0; j < n; j++) line[j] = src[base + j * inner]!;
      if (kernel === 'bspline3') prefilter(line, n);
      const ob = o * m * inner + q;
      for (let i = 0; i < m; i++) {
        let v = 0;
        for (let k = 0; k < t.k; k++) v += t.w[i * t.k + k]! * line[t.idx[i * t.k + k]!]!;
        out[ob + i * inner] = v;
      }
    }
  }
  return out;
}

/** Resamples [C, Z, Y, X] to newShape [Z, Y, X] with a kernel per axis. */
export function resampleImage(src: Float32Array, channels: number, shape: number[], newShape: number[], kernels: Kernel[]): Float32Array {
  let data = src;
  let cur = [channels, ...shape];
  // Resample the axes that shrink first: less work for the later passes.
  const order = [0, 1, 2].sort((a, b) => newShape[a]! / shape[a]! - newShape[b]! / shape[b]!);
  for (const a of order) {
    data = resampleAxis(data, cur, a + 1, newShape[a]!, kernels[a]!);
    cur = [...cur];
    cur[a + 1] = newShape[a]!;
  }
  return data === src ? Float32Array.from(src) : data;
}

/** Label map resampling: per-class one-hot through the kernels, then argmax. */
export function resampleLabel(label: Uint8Array, shape: number[], newShape: number[], numClasses: number, kernels: Kernel[]): Uint8Array {
  const nOut = newShape[0]! * newShape[1]! * newShape[2]!;
  if (shape.every((s, i) => s === newShape[i])) return Uint8Array.from(label);
  const out = new Uint8Array(nOut);
  const best = new Float32Array(nOut).fill(-Infinity);
  const onehot = new Float32Array(label.length);
  for (let c = 0; c < numClasses; c++) {
    let any = false;
    for (let i = 0; i < label.length; i++) {
      const v = label[i] === c ? 1 : 0;
      onehot[i] = v;
      any ||= v === 1;
    }
    if (!any && c > 0) continue;
    const r = resampleImage(onehot, 1, shape, newShape, kernels);
    for (let i = 0; i < nOut; i++) {
      if (r[i]! > best[i]!) {
        best[i] = r[i]!;
        out[i] = c;
      }
    }
  }
  return out;
}
