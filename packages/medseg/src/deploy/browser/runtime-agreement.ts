/**
 * Whether two runtimes of one model (the page's WebGPU and wasm sessions)
 * compute the same network: one pass of each over the same fixed
 * pseudo-random patch (standard normal values, as a z-scored image holds),
 * compared by the largest logit difference relative to the logits' spread
 * and by how many voxels get the same class. WebGPU shaders compute in other
 * orders than the CPU kernels (and some drivers are wrong), so the page uses
 * WebGPU only when it agrees with wasm within RUNTIME_TOLERANCE.
 */
import { argmaxClasses, runPatch, type WebModel } from './web-model.ts';

/** Largest logit difference allowed, as a fraction of the logits' range (float32 summation order, not a different network). */
export const RUNTIME_TOLERANCE = 1e-3;

export interface RuntimeAgreement {
  /** Largest |a - b| over the patch's logits. */
  maxAbsDiff: number;
  /** maxAbsDiff over the range of the reference's logits. */
  relativeDiff: number;
  /** Fraction of voxels whose argmax class is the same. */
  sameClass: number;
  agrees: boolean;
}

/** A patch of the model's input shape [1, C, ...patch] filled with standard normal values from a fixed seed. */
export function probePatch(m: WebModel, seed = 20261203): { data: Float32Array; shape: number[] } {
  const shape = [1, m.info.channels.length, ...m.info.patchSize];
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let s = seed >>> 0;
  const uniform = () => {
    // xorshift32: a fixed sequence, the same in every browser.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 2 ** 32;
  };
  for (let i = 0; i < data.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(t);
    if (i + 1 < data.length) data[i + 1] = r * Math.sin(t);
  }
  return { data, shape };
}

/** One pass of `candidate` against one of `reference` on the probe patch. */
export async function compareRuntimes(candidate: WebModel, reference: WebModel): Promise<RuntimeAgreement> {
  const { data, shape } = probePatch(reference);
  const want = await runPatch(reference, data, shape);
  const got = await runPatch(candidate, Float32Array.from(data), shape);
  if (got.logits.length !== want.logits.length) return { maxAbsDiff: Infinity, relativeDiff: Infinity, sameClass: 0, agrees: false };
  let maxAbsDiff = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < want.logits.length; i++) {
    const w = want.logits[i]!;
    const d = Math.abs(got.logits[i]! - w);
    // NaN compares false: a NaN logit makes the difference infinite.
    maxAbsDiff = d <= maxAbsDiff ? maxAbsDiff : Number.isNaN(d) ? Infinity : d;
    if (w < lo) lo = w;
    if (w > hi) hi = w;
  }
  const a = argmaxClasses(got.logits, got.dims);
  const b = argmaxClasses(want.logits, want.dims);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  const relativeDiff = maxAbsDiff / Math.max(hi - lo, 1e-12);
  return { maxAbsDiff, relativeDiff, sameClass: same / a.length, agrees: relativeDiff <= RUNTIME_TOLERANCE };
}
