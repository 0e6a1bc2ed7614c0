/**
 * mulberry32: a small, seeded, well-mixed 32-bit PRNG returning floats in
 * [0, 1). Used where a result must be reproducible from a seed without the
 * engine's generators (bootstrap resampling, test perturbations, fuzzing).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
