/**
 * nnU-Net's training augmentations for one sample, 2D or 3D, each applied
 * with the plan's probability: rotation + scaling + elastic deformation as
 * one sampling grid (image linear, label nearest, zero outside), Gaussian
 * noise, Gaussian blur, multiplicative brightness, contrast, simulated low
 * resolution, gamma (also on the inverted image), mirroring.
 *
 * Pure TypeScript on typed arrays, driven by the seeded Rng: the loader runs
 * this in worker threads, where the native torch binding cannot be loaded.
 * The grid sampler follows torch.nn.functional.grid_sample (align_corners
 * false, zero padding); augment-torch.ts plugs torch's gridSample in instead
 * and the tests check that both agree.
 */
import type { AugmentationParams } from '../plan/types.ts';
import { resampleImage } from './resample.ts';
import type { Rng } from '../util/random.ts';

/** Samples [C, ...shape] at voxel coordinates coords [N, dims] (z, y, x order). */
export type GridSampler = (src: Float32Array, channels: number, shape: number[], coords: Float32Array, mode: 'linear' | 'nearest') => Float32Array;

export const jsGridSampler: GridSampler = (src, C, shape, coords, mode) => {
  const d = shape.length;
  const N = coords.length / d;
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(C * N);
  const [S0, S1, S2] = d === 3 ? shape : [1, shape[0]!, shape[1]!];
  for (let i = 0; i < N; i++) {
    const z = d === 3 ? coords[i * 3]! : 0;
    const y = coords[i * d + d - 2]!;
    const x = coords[i * d + d - 1]!;
    if (mode === 'nearest') {
      // grid_sample 'nearest' rounds half to even (nearbyint)
      const zi = d === 3 ? roundEven(z) : 0,
        yi = roundEven(y),
        xi = roundEven(x);
      if (zi < 0 || zi >= S0! || yi < 0 || yi >= S1! || xi < 0 || xi >= S2!) continue;
      const o = (zi * S1! + yi) * S2! + xi;
      for (let c = 0; c < C; c++) out[c * N + i] = src[c * n + o]!;
      continue;
    }
    const z0 = Math.floor(z),
      y0 = Math.floor(y),
      x0 = Math.floor(x);
    const fz = z - z0,
      fy = y - y0,
      fx = x - x0;
    for (let dz = 0; dz < (d === 3 ? 2 : 1); dz++) {
      const zz = z0 + dz;
      if (zz < 0 || zz >= S0!) continue;
      const wz = d === 3 ? (dz ? fz : 1 - fz) : 1;
      for (let dy = 0; dy < 2; dy++) {
        const yy = y0 + dy;
        if (yy < 0 || yy >= S1!) continue;
        const wy = dy ? fy : 1 - fy;
        for (let dx = 0; dx < 2; dx++) {
          const xx = x0 + dx;
          if (xx < 0 || xx >= S2!) continue;
          const w = wz * wy * (dx ? fx : 1 - fx);
          const o = (zz * S1! + yy) * S2! + xx;
          for (let c = 0; c < C; c++) out[c * N + i]! += w * src[c * n + o]!;
        }
      }
    }
  }
  return out;
};

function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface Sample {
  image: Float32Array;
  label: Uint8Array | null;
  channels: number;
  /** Spatial shape: [Z, Y, X] or [Y, X]. */
  shape: number[];
}

function rotationMatrix(angles: number[], d: number): number[][] {
  if (d === 2) {
    const a = angles[0]!;
    return [
      [Math.cos(a), -Math.sin(a)],
      [Math.sin(a), Math.cos(a)],
    ];
  }
  const [az, ay, ax] = angles as [number, number, number];
  // rotations about the z, y and x axes in (z, y, x) coordinates
  const rz = [
    [1, 0, 0],
    [0, Math.cos(az), -Math.sin(az)],
    [0, Math.sin(az), Math.cos(az)],
  ];
  const ry = [
    [Math.cos(ay), 0, Math.sin(ay)],
    [0, 1, 0],
    [-Math.sin(ay), 0, Math.cos(ay)],
  ];
  const rx = [
    [Math.cos(ax), -Math.sin(ax), 0],
    [Math.sin(ax), Math.cos(ax), 0],
    [0, 0, 1],
  ];
  const mul = (a: number[][], b: number[][]) => a.map((r) => b[0]!.map((_, j) => r.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
  return mul(mul(rz, ry), rx);
}

/** Separable Gaussian smoothing of one [..shape] field, edge-clamped. */
export function gaussianSmooth(x: Float32Array, shape: number[], sigmas: number[]): Float32Array {
  let cur = x;
  const n = cur.length;
  for (let a = 0; a < shape.length; a++) {
    const s = sigmas[a]!;
    if (!(s > 0)) continue;
    const r = Math.ceil(3 * s);
    const k = new Float64Array(2 * r + 1);
    let sum = 0;
    for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * s * s));
    for (let i = 0; i < k.length; i++) k[i]! /= sum;
    const L = shape[a]!;
    const inner = shape.slice(a + 1).reduce((p, q) => p * q, 1);
    const outer = n / (L * inner);
    const out = new Float32Array(n);
    for (let o = 0; o < outer; o++) {
      for (let q = 0; q < inner; q++) {
        const base = o * L * inner + q;
        for (let i = 0; i < L; i++) {
          let v = 0;
          for (let t = -r; t <= r; t++) v += k[t + r]! * cur[base + Math.min(L - 1, Math.max(0, i + t)) * inner]!;
          out[base + i * inner] = v;
        }
      }
    }
    cur = out;
  }
  return cur;
}

/** The spatial transform as voxel coordinates into the input, or null when none applies. */
function spatialCoords(shape: number[], p: AugmentationParams, rng: Rng): Float32Array | null {
  const d = shape.length;
  const doRot = rng.chance(p.rotation.p);
  const doScale = rng.chance(p.scaling.p);
  const doElastic = rng.chance(p.elastic.p);
  if (!doRot && !doScale && !doElastic) return null;
  const deg = (m: number) => (rng.uniform(-m, m) * Math.PI) / 180;
  const angles = doRot
    ? d === 2
      ? [deg(p.rotation.maxDegrees[0]!)]
      : [0, 1, 2].map((a) => deg(p.rotation.maxDegrees[a] ?? 0))
    : new Array(d === 2 ? 1 : 3).fill(0);
  const scale = doScale ? rng.uniform(p.scaling.range[0], p.scaling.range[1]) : 1;
  const R = rotationMatrix(angles, d);
  const n = shape.reduce((a, b) => a * b, 1);
  let disp: Float32Array[] | null = null;
  if (doElastic) {
    const alpha = rng.uniform(p.elastic.alpha[0], p.elastic.alpha[1]);
    const sigma = rng.uniform(p.elastic.sigma[0], p.elastic.sigma[1]);
    disp = [];
    for (let a = 0; a < d; a++) {
      const noise = new Float32Array(n);
      for (let i = 0; i < n; i++) noise[i] = rng.uniform(-1, 1);
      const sm = gaussianSmooth(
        noise,
        shape,
        shape.map((_, k) => (p.dummy2d && k === 0 ? 0 : sigma)),
      );
      for (let i = 0; i < n; i++) sm[i]! *= alpha;
      if (p.dummy2d && a === 0) sm.fill(0);
      disp.push(sm);
    }
  }
  const centre = shape.map((s) => (s - 1) / 2);
  const coords = new Float32Array(n * d);
  const idx = new Array(d).fill(0);
  const v = new Array(d).fill(0);
  for (let i = 0; i < n; i++) {
    let rem = i;
    for (let a = d - 1; a >= 0; a--) {
      idx[a] = rem % shape[a]!;
      rem = Math.floor(rem / shape[a]!);
    }
    for (let a = 0; a < d; a++) v[a] = idx[a] - centre[a]! + (disp ? disp[a]![i]! : 0);
    for (let a = 0; a < d; a++) {
      let s = 0;
      for (let b = 0; b < d; b++) s += R[a]![b]! * v[b];
      coords[i * d + a] = s * scale + centre[a]!;
    }
  }
  return coords;
}

function flip(a: Float32Array | Uint8Array, channels: number, shape: number[], axis: number): void {
  const L = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((p, q) => p * q, 1);
  const outer = (channels * shape.reduce((p, q) => p * q, 1)) / (L * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < L >> 1; i++) {
      const s = (o * L + i) * inner,
        t = (o * L + L - 1 - i) * inner;
      for (let q = 0; q < inner; q++) {
        const tmp = a[s + q]!;
        a[s + q] = a[t + q]!;
        a[t + q] = tmp;
      }
    }
  }
}

function stats(x: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0,
    min = Infinity,
    max = -Infinity;
  for (const v of x) {
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = s / x.length;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  return { mean, std: Math.sqrt(ss / x.length), min, max };
}

function gamma(x: Float32Array, g: number, invert: boolean): void {
  if (invert) for (let i = 0; i < x.length; i++) x[i] = -x[i]!;
  const st = stats(x);
  const range = st.max - st.min + 1e-7;
  for (let i = 0; i < x.length; i++) x[i] = Math.pow((x[i]! - st.min) / range, g) * range + st.min;
  // retain_stats: the gamma curve keeps the channel's mean and std
  const after = stats(x);
  const f = st.std / (after.std + 1e-8);
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - after.mean) * f + st.mean;
  if (invert) for (let i = 0; i < x.length; i++) x[i] = -x[i]!;
}

/** Augments one sample (returns new arrays; the input is left as is). */
export function augmentSample(s: Sample, p: AugmentationParams, rng: Rng, sampler: GridSampler = jsGridSampler): Sample {
  const { channels: C, shape } = s;
  const d = shape.length;
  const n = shape.reduce((a, b) => a * b, 1);
  let image: Float32Array = Float32Array.from(s.image);
  let label = s.label ? Uint8Array.from(s.label) : null;
  const coords = spatialCoords(shape, p, rng);
  if (coords) {
    image = sampler(image, C, shape, coords, 'linear');
    if (label) label = Uint8Array.from(sampler(Float32Array.from(label), 1, shape, coords, 'nearest'));
  }
  const ch = (c: number) => image.subarray(c * n, (c + 1) * n);
  if (rng.chance(p.noise.p)) {
    const sd = Math.sqrt(rng.uniform(p.noise.variance[0], p.noise.variance[1]));
    for (let i = 0; i < image.length; i++) image[i]! += sd * rng.normal();
  }
  if (rng.chance(p.blur.p)) {
    for (let c = 0; c < C; c++) {
      if (!rng.chance(0.5)) continue; // nnU-Net: p_per_channel 0.5
      const sig = shape.map((_, a) => (p.dummy2d && a === 0 ? 0 : rng.uniform(p.blur.sigma[0], p.blur.sigma[1])));
      image.set(gaussianSmooth(ch(c).slice(), shape, sig), c * n);
    }
  }
  if (rng.chance(p.brightness.p)) {
    for (let c = 0; c < C; c++) {
      const m = rng.uniform(p.brightness.range[0], p.brightness.range[1]);
      const x = ch(c);
      for (let i = 0; i < n; i++) x[i]! *= m;
    }
  }
  if (rng.chance(p.contrast.p)) {
    for (let c = 0; c < C; c++) {
      const f = rng.uniform(p.contrast.range[0], p.contrast.range[1]);
      const x = ch(c);
      const st = stats(x);
      for (let i = 0; i < n; i++) x[i] = Math.min(st.max, Math.max(st.min, (x[i]! - st.mean) * f + st.mean)); // preserve_range
    }
  }
  if (rng.chance(p.lowResolution.p)) {
    for (let c = 0; c < C; c++) {
      if (!rng.chance(0.5)) continue;
      const zoom = rng.uniform(p.lowResolution.zoom[0], p.lowResolution.zoom[1]);
      const sh3 = d === 3 ? shape : [1, ...shape];
      const ignore = new Set(p.lowResolution.ignoreAxes.map((a) => (d === 3 ? a : a + 1)));
      const low = sh3.map((v, a) => ((a === 0 && d === 2) || ignore.has(a) ? v : Math.max(1, Math.round(v * zoom))));
      const down = resampleImage(ch(c).slice(), 1, sh3, low, ['nearest', 'nearest', 'nearest']);
      image.set(resampleImage(down, 1, low, sh3, ['bspline3', 'bspline3', 'bspline3']), c * n);
    }
  }
  const drawGamma = () => (rng.chance(0.5) ? rng.uniform(p.gamma.range[0], 1) : rng.uniform(1, p.gamma.range[1]));
  if (rng.chance(p.gamma.pInvert)) for (let c = 0; c < C; c++) gamma(ch(c), drawGamma(), true);
  if (rng.chance(p.gamma.p)) for (let c = 0; c < C; c++) gamma(ch(c), drawGamma(), false);
  for (const a of p.mirror.axes) {
    if (a >= d || !rng.chance(p.mirror.p)) continue;
    flip(image, C, shape, a);
    if (label) flip(label, 1, shape, a);
  }
  return { image, label, channels: C, shape };
}
