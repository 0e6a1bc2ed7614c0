/**
 * Rician noise of MR magnitude images: the magnitude of the clean signal plus
 * independent Gaussian noise of standard deviation sigma in the real and the
 * imaginary channel, sqrt((s + n1)² + n2²). The level is given as a fraction of
 * the image's 99th-percentile foreground intensity (foreground: voxels > 0),
 * the scale every enhancement task normalises images by.
 */
import { Rng } from '../util/random.ts';

/** The p-th percentile (0..100) of the values, linearly interpolated between order statistics (NumPy's default). */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values');
  const sorted = Float64Array.from(values).sort();
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

/** The 99th percentile of the foreground (voxels > 0); 1 for an image with no foreground. */
export function foregroundScale(data: ArrayLike<number>): number {
  const fg: number[] = [];
  for (let i = 0; i < data.length; i++) if (data[i]! > 0) fg.push(data[i]!);
  return fg.length ? percentile(fg, 99) : 1;
}

/** A copy of `data` with Rician noise of standard deviation `sigma` (in the data's units), drawn from `seed`. */
export function addRicianNoise(data: ArrayLike<number>, sigma: number, seed: number): Float32Array {
  if (!(sigma >= 0)) throw new RangeError(`noise sigma must be >= 0, got ${sigma}`);
  const rng = new Rng(seed);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const re = data[i]! + sigma * rng.normal();
    const im = sigma * rng.normal();
    out[i] = Math.sqrt(re * re + im * im);
  }
  return out;
}
