/**
 * Image-quality metrics of a restored image against its reference: PSNR for a
 * given data range, and SSIM in Wang et al.'s (2004) form with an isotropic
 * Gaussian window (sigma 1.5, truncated at 3.5 sigma: 11 taps), population
 * (co)variances, K1 0.01 and K2 0.03, averaged over the positions whose
 * window lies inside the image (the border of the window's radius is left
 * out). The window's filtering extends the image by half-sample reflection
 * (d c b a | a b c d). 2D or 3D, on x-fastest arrays of shape [nz, ny, nx]
 * (2D: nz = 1, and no filtering along z).
 */

export interface SsimOptions {
  dataRange: number;
  sigma?: number;
  k1?: number;
  k2?: number;
}

/** Peak signal-to-noise ratio in dB: 10 log10(R² / MSE); Infinity for identical images. */
export function psnr(reference: ArrayLike<number>, test: ArrayLike<number>, dataRange: number): number {
  if (reference.length !== test.length) throw new RangeError(`psnr: ${reference.length} vs ${test.length} values`);
  if (!(dataRange > 0)) throw new RangeError(`psnr: data range must be > 0, got ${dataRange}`);
  let se = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = reference[i]! - test[i]!;
    se += d * d;
  }
  return 10 * Math.log10((dataRange * dataRange) / (se / reference.length));
}

function gaussianTaps(sigma: number): Float64Array {
  const radius = Math.floor(3.5 * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += w[i + radius] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < w.length; i++) w[i]! /= sum;
  return w;
}

/** Index i reflected into [0, n) by half-sample symmetry, for any i. */
export function reflectIndex(i: number, n: number): number {
  const period = 2 * n;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - 1 - j;
  return j;
}

/** Separable Gaussian filter of a [nz, ny, nx] array along the axes of length > 1 (z only when 3D). */
function gaussianFilter(a: Float64Array, shape: readonly number[], taps: Float64Array): Float64Array {
  const [, ny, nx] = shape as [number, number, number];
  const r = (taps.length - 1) / 2;
  let src = a;
  const strides = [nx * ny, nx, 1];
  for (let axis = 0; axis < 3; axis++) {
    const n = shape[axis]!;
    if (n === 1) continue;
    const stride = strides[axis]!;
    const out = new Float64Array(src.length);
    const line = new Float64Array(n);
    const lines = src.length / n;
    for (let l = 0; l < lines; l++) {
      // base index of this line: enumerate the other two axes
      const outer = Math.floor(l / (axis === 2 ? ny : nx));
      const inner = l % (axis === 2 ? ny : nx);
      const base = axis === 0 ? outer * nx + inner : axis === 1 ? outer * nx * ny + inner : outer * nx * ny + inner * nx;
      for (let i = 0; i < n; i++) line[i] = src[base + i * stride]!;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = -r; k <= r; k++) s += taps[k + r]! * line[reflectIndex(i + k, n)]!;
        out[base + i * stride] = s;
      }
    }
    src = out;
  }
  return src;
}

/**
 * Mean structural similarity of `test` to `reference`, both of shape
 * [nz, ny, nx] (x fastest). Every axis of length > 1 needs at least the
 * window's 11 samples.
 */
export function ssim(reference: ArrayLike<number>, test: ArrayLike<number>, shape: readonly [number, number, number], o: SsimOptions): number {
  const n = shape[0] * shape[1] * shape[2];
  if (reference.length !== n || test.length !== n)
    throw new RangeError(`ssim: shape ${shape.join('x')} does not match ${reference.length} and ${test.length} values`);
  if (!(o.dataRange > 0)) throw new RangeError(`ssim: data range must be > 0, got ${o.dataRange}`);
  const taps = gaussianTaps(o.sigma ?? 1.5);
  const pad = (taps.length - 1) / 2;
  for (const len of shape) {
    if (len > 1 && len < taps.length) throw new RangeError(`ssim: image ${shape.join('x')} is smaller than the ${taps.length}-sample window`);
  }
  const x = Float64Array.from(reference);
  const y = Float64Array.from(test);
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i]! * x[i]!;
    yy[i] = y[i]! * y[i]!;
    xy[i] = x[i]! * y[i]!;
  }
  const [ux, uy, uxx, uyy, uxy] = [x, y, xx, yy, xy].map((a) => gaussianFilter(a, shape, taps)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const c1 = ((o.k1 ?? 0.01) * o.dataRange) ** 2;
  const c2 = ((o.k2 ?? 0.03) * o.dataRange) ** 2;
  const [, ny, nx] = shape;
  const lo = shape.map((len) => (len > 1 ? pad : 0));
  const hi = shape.map((len) => (len > 1 ? len - pad : 1));
  let sum = 0;
  let count = 0;
  for (let z = lo[0]!; z < hi[0]!; z++) {
    for (let yI = lo[1]!; yI < hi[1]!; yI++) {
      for (let xI = lo[2]!; xI < hi[2]!; xI++) {
        const i = xI + nx * (yI + ny * z);
        const mx = ux[i]!;
        const my = uy[i]!;
        const vx = uxx[i]! - mx * mx;
        const vy = uyy[i]! - my * my;
        const vxy = uxy[i]! - mx * my;
        sum += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        count++;
      }
    }
  }
  return sum / count;
}
