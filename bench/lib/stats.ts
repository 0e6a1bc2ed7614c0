/** Small timing helpers shared by the benches: medians and warmed-up repeat timing. */
import { performance } from 'node:perf_hooks';

// The project's one quantile definition (NumPy 'linear'); NaN for an empty list.
import { median } from '../../packages/medseg/src/util/quantile.ts';

export { median };

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

/** Seconds per call of an async fn: one untimed round, then the median over `rounds` rounds of `repeat` calls each. */
export async function secondsPerCall(fn: () => Promise<unknown>, rounds: number, repeat: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const t0 = performance.now();
    for (let k = 0; k < repeat; k++) await fn();
    if (r > 0) times.push((performance.now() - t0) / 1000 / repeat);
  }
  return median(times);
}

/** The same for a Python peer timed inside its interpreter: Python source defining timed(fn, rounds, repeat). */
export const PY_TIMED = `
import time
def timed(fn, rounds, repeat):
    out = []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        if r > 0:
            out.append((time.perf_counter() - t0) / repeat)
    return sorted(out)[len(out) // 2]
`;
