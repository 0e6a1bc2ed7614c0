/**
 * Quantiles with NumPy's default ('linear') interpolation — the one definition
 * used by the plan (median spacing and shape), the fingerprint, the surface
 * distances (HD95), the statistics and the trainer's epoch-time estimate, so
 * that they agree with each other and with the NumPy/SciPy references.
 */

/** Quantile q in [0, 1] of values sorted ascending; NaN when empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  if (a === b) return a; // keeps Infinity - Infinity (= NaN) out of equal neighbours
  return a + (b - a) * (pos - lo);
}

/** Percentile p in [0, 100] of values sorted ascending (numpy.percentile). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  return quantileSorted(sorted, p / 100);
}

export function quantile(values: readonly number[], q: number): number {
  return quantileSorted(
    [...values].sort((a, b) => a - b),
    q,
  );
}

/** Median (NaN when empty). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}
