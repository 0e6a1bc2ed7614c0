/**
 * Deterministic test inputs from a seeded JS PRNG, so that test data never
 * depends on the engine's own random generators (which are under test). The
 * PRNG is the engine's own: the engine does not depend on medseg, whose
 * generator lives in medseg's util/random.ts.
 */
import { tensor } from '../creation.ts';
import type { DType } from '../dtype.ts';
import type { Tensor } from '../tensor.ts';

/** mulberry32: a small, well-mixed 32-bit PRNG; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Standard normal values (Box-Muller) times `scale`, plus `shift`. */
export function randnData(n: number, seed: number, scale = 1, shift = 0): number[] {
  const r = prng(seed);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v) * scale + shift;
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v) * scale + shift;
  }
  return out;
}

export interface InputOptions {
  dtype?: DType;
  scale?: number;
  shift?: number;
  requiresGrad?: boolean;
}

/** A normal(shift, scale) tensor from `seed` (float32 unless dtype says otherwise). */
export function randnT(shape: number[], seed: number, o: InputOptions = {}): Tensor {
  const data = randnData(count(shape), seed, o.scale ?? 1, o.shift ?? 0);
  const dtype = o.dtype ?? 'float32';
  return tensor(dtype === 'float64' ? Float64Array.from(data) : Float32Array.from(data), shape, {
    dtype,
    requiresGrad: o.requiresGrad ?? false,
  });
}

/** Uniform values in [low, high). */
export function uniformT(shape: number[], seed: number, low = 0, high = 1, o: InputOptions = {}): Tensor {
  const r = prng(seed);
  const data = Array.from({ length: count(shape) }, () => low + (high - low) * r());
  const dtype = o.dtype ?? 'float32';
  return tensor(dtype === 'float64' ? Float64Array.from(data) : Float32Array.from(data), shape, {
    dtype,
    requiresGrad: o.requiresGrad ?? false,
  });
}

/** Integers uniform in [low, high), int64 unless dtype says otherwise. */
export function randintT(shape: number[], seed: number, low: number, high: number, dtype: DType = 'int64'): Tensor {
  const r = prng(seed);
  const data = Array.from({ length: count(shape) }, () => low + Math.floor((high - low) * r()));
  return tensor(data, shape, { dtype });
}

/** n distinct values in random order (no ties: max/sort/topk results are unambiguous). */
export function distinctT(shape: number[], seed: number, o: InputOptions = {}): Tensor {
  const n = count(shape);
  const r = prng(seed);
  const vals = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.37 + 0.01 * r());
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [vals[i], vals[j]] = [vals[j]!, vals[i]!];
  }
  const dtype = o.dtype ?? 'float32';
  return tensor(dtype === 'float64' ? Float64Array.from(vals) : Float32Array.from(vals), shape, {
    dtype,
    requiresGrad: o.requiresGrad ?? false,
  });
}
