/**
 * The entropy (KL-divergence) calibrator of TensorRT's int8 calibration
 * (Migacz, "8-bit inference with TensorRT", 2017): the clipping threshold of
 * a tensor is the one whose 128-level quantization of the histogram of |x|
 * loses the least information.
 *
 * For each candidate of i = 128 ... B bins (of B over [0, max |x|]):
 * - P is the first i bins, with the count of every bin beyond added to its last;
 * - Q merges the first i bins (without that outlier count) into 128 levels of
 *   floor(i / 128) bins each, the last level taking the remainder, and
 *   spreads each level's count evenly over the level's bins where P is
 *   non-zero (zero elsewhere);
 * - both are normalised and smoothed (each zero becomes eps = 1e-4, taken
 *   evenly from the non-zero entries; a candidate where that leaves an entry
 *   <= 0 is not valid) and normalised again; the divergence is KL(P || Q).
 * The threshold is the upper edge i x bin width of the i with the smallest
 * divergence (the first, on ties).
 *
 * The histogram is accumulated over calibration batches; a batch with a
 * larger max |x| widens the range, and the bins counted so far move, whole,
 * into the wider bin their centre falls in.
 */

/** Levels of the quantized distribution: the positive half of int8. */
export const ENTROPY_LEVELS = 128;
/** Histogram bins (TensorRT's 2048). */
export const ENTROPY_BINS = 2048;
const EPS = 1e-4;

/**
 * Smooths a distribution in place (zeros become EPS, taken evenly from the
 * non-zeros) and normalises it; false when it is all zero or a non-zero
 * entry is too small to give its share (the candidate is then not valid).
 */
function smoothNormalise(d: Float64Array): boolean {
  let zeros = 0;
  let total = 0;
  for (let k = 0; k < d.length; k++) {
    if (d[k] === 0) zeros++;
    total += d[k]!;
  }
  const nonZeros = d.length - zeros;
  if (nonZeros === 0 || total <= 0) return false;
  // On counts normalised first, so EPS is a probability as in the description.
  const take = (EPS * zeros) / nonZeros;
  let sum = 0;
  for (let k = 0; k < d.length; k++) {
    const v = d[k] === 0 ? EPS : d[k]! / total - take;
    if (v <= 0) return false;
    d[k] = v;
    sum += v;
  }
  for (let k = 0; k < d.length; k++) d[k]! /= sum;
  return true;
}

/** KL(P || Q) of two normalised distributions, natural log. */
function kl(p: Float64Array, q: Float64Array): number {
  let s = 0;
  for (let k = 0; k < p.length; k++) s += p[k]! * Math.log(p[k]! / q[k]!);
  return s;
}

/** The divergence of every candidate bin count i (index i - levels) and the chosen bin count, as the module comment says. */
export function entropyDivergences(hist: ArrayLike<number>, levels = ENTROPY_LEVELS): { divergences: number[]; bins: number } {
  const B = hist.length;
  if (B < levels) throw new RangeError(`an entropy histogram needs at least ${levels} bins, got ${B}`);
  const suffix = new Float64Array(B + 1);
  for (let k = B - 1; k >= 0; k--) suffix[k] = suffix[k + 1]! + hist[k]!;
  const pBuf = new Float64Array(B);
  const qBuf = new Float64Array(B);
  const divergences: number[] = [];
  let best = B;
  let bestDiv = Infinity;
  for (let i = levels; i <= B; i++) {
    const p = pBuf.subarray(0, i);
    const q = qBuf.subarray(0, i);
    for (let k = 0; k < i; k++) p[k] = hist[k]!;
    p[i - 1]! += suffix[i]!;
    q.fill(0);
    const merged = Math.floor(i / levels);
    for (let j = 0; j < levels; j++) {
      const start = j * merged;
      const stop = j === levels - 1 ? i : start + merged;
      let count = 0;
      let nonZero = 0;
      for (let k = start; k < stop; k++) {
        count += hist[k]!;
        if (p[k] !== 0) nonZero++;
      }
      if (nonZero > 0) for (let k = start; k < stop; k++) if (p[k] !== 0) q[k] = count / nonZero;
    }
    const d = smoothNormalise(p) && smoothNormalise(q) ? kl(p, q) : Infinity;
    divergences.push(d);
    if (d < bestDiv) {
      bestDiv = d;
      best = i;
    }
  }
  return { divergences, bins: best };
}

/** The clipping threshold of a histogram of |x| with bins of `binWidth`. */
export function entropyThreshold(hist: ArrayLike<number>, binWidth: number, levels = ENTROPY_LEVELS): number {
  return entropyDivergences(hist, levels).bins * binWidth;
}

/** A histogram of |x| over calibration batches, widened as larger values come (module comment). */
export class AbsHistogram {
  readonly counts: Float64Array;
  /** Upper end of the range; 0 until a non-zero value is seen. */
  max = 0;

  constructor(readonly bins = ENTROPY_BINS) {
    this.counts = new Float64Array(bins);
  }

  add(values: Float32Array): void {
    let m = 0;
    for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
    if (m > this.max) this.widen(m);
    const B = this.bins;
    const scale = this.max > 0 ? B / this.max : 0;
    for (let i = 0; i < values.length; i++) this.counts[Math.min(B - 1, Math.floor(Math.abs(values[i]!) * scale))]!++;
  }

  private widen(max: number): void {
    if (this.max > 0) {
      const old = Float64Array.from(this.counts);
      this.counts.fill(0);
      const w = this.max / this.bins;
      for (let k = 0; k < this.bins; k++) if (old[k]) this.counts[Math.min(this.bins - 1, Math.floor(((k + 0.5) * w * this.bins) / max))]! += old[k]!;
    }
    this.max = max;
  }

  /** The entropy calibrator's threshold (0 for a tensor that was all zero). */
  threshold(levels = ENTROPY_LEVELS): number {
    return this.max > 0 ? entropyThreshold(this.counts, this.max / this.bins, levels) : 0;
  }
}
