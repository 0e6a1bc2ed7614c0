/** Small timing helpers shared by the benches: medians and warmed-up repeat timing. */
import { performance } from 'node:perf_hooks';

// The project's one quantile definition (NumPy 'linear'); NaN for an empty list.
export { median } from '../../packages/medseg/src/util/quantile.ts';

/** Runs fn `warmup` times untimed, then `reps` times; returns each timed run in ms. */
export function timeRepeated(fn: () => void, reps: number, warmup = 0): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
