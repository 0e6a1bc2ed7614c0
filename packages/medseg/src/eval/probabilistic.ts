/**
 * Metrics of predicted probabilities against a binary reference: exact AUC-ROC
 * and calibration (expected calibration error and the reliability curve).
 */
import { MetricsError } from './metrics_errors.ts';

/** Scores split by the reference: positives and negatives, in any order. */
export interface SplitScores {
  pos: Float64Array | Float32Array;
  neg: Float64Array | Float32Array;
}

/**
 * Splits `scores[offset + i]` by `target[i] === label` over the voxels i with
 * region[i] !== 0 (all when no region). Throws BAD_VALUE on NaN. Float32
 * scores stay float32 (exact, and half the memory on big volumes).
 */
export function splitScores(
  scores: Float32Array | Float64Array | number[],
  offset: number,
  target: ArrayLike<number>,
  label: number,
  region?: ArrayLike<number>,
): SplitScores {
  const n = target.length;
  let np = 0,
    nn = 0;
  for (let i = 0; i < n; i++) {
    if (region && region[i] === 0) continue;
    if (target[i] === label) np++;
    else nn++;
  }
  const Ctor = scores instanceof Float32Array ? Float32Array : Float64Array;
  const pos = new Ctor(np);
  const neg = new Ctor(nn);
  np = 0;
  nn = 0;
  for (let i = 0; i < n; i++) {
    if (region && region[i] === 0) continue;
    const s = scores[offset + i]!;
    if (Number.isNaN(s)) throw new MetricsError('BAD_VALUE', `probability at voxel ${i} is NaN`);
    if (target[i] === label) pos[np++] = s;
    else neg[nn++] = s;
  }
  return { pos, neg };
}

/**
 * AUC-ROC = P(score of a random positive > score of a random negative) + ½ P(tie),
 * i.e. the Mann–Whitney U statistic / (n+ n-), exact with ties. Both sides are
 * sorted (native typed-array sort, O(n log n)) and merged once. NaN when there
 * is no positive or no negative. Sorts the arrays in place.
 */
export function aucRoc(s: SplitScores): number {
  const pos = s.pos.sort();
  const neg = s.neg.sort();
  const np = pos.length;
  const nn = neg.length;
  if (np === 0 || nn === 0) return NaN;
  let acc = 0; // sum over positives of (#negatives below) + ½ (#negatives equal)
  let j = 0;
  for (let i = 0; i < np;) {
    const v = pos[i]!;
    let i2 = i + 1;
    while (i2 < np && pos[i2] === v) i2++;
    while (j < nn && neg[j]! < v) j++;
    let j2 = j;
    while (j2 < nn && neg[j2] === v) j2++;
    acc += (i2 - i) * (j + 0.5 * (j2 - j));
    i = i2;
  }
  return acc / np / nn;
}

/**
 * 'top-label' (default; Guo et al. 2017): confidence = max(p, 1-p), correct
 * when (p >= 0.5) agrees with the reference. 'foreground' (class-wise):
 * confidence = p, "accuracy" = fraction of reference voxels of the class.
 */
export type CalibrationMode = 'top-label' | 'foreground';

export interface Reliability {
  /** Bin b covers [b/B, (b+1)/B), the last bin includes 1. */
  bins: number;
  /** Mean confidence per bin (NaN for empty bins). */
  confidence: number[];
  /** Observed accuracy per bin (NaN for empty bins). */
  accuracy: number[];
  count: number[];
  /** Σ_b count_b / N · |accuracy_b − confidence_b|; NaN when there are no voxels. */
  ece: number;
}

/**
 * Per-case reliability curves pooled into one: bin counts add up, confidence
 * and accuracy are count-weighted. Curves with a different bin count than the
 * first are skipped; null when there is none.
 */
export function poolReliability(curves: Iterable<Reliability | undefined>): Pick<Reliability, 'confidence' | 'accuracy' | 'count'> | null {
  let conf: number[] | undefined;
  let acc: number[] | undefined;
  let count: number[] | undefined;
  for (const r of curves) {
    if (!r) continue;
    conf ??= new Array<number>(r.bins).fill(0);
    acc ??= new Array<number>(r.bins).fill(0);
    count ??= new Array<number>(r.bins).fill(0);
    if (r.bins !== count.length) continue;
    for (let b = 0; b < r.bins; b++) {
      const n = r.count[b]!;
      if (!n) continue;
      conf[b]! += n * r.confidence[b]!;
      acc[b]! += n * r.accuracy[b]!;
      count[b]! += n;
    }
  }
  if (!conf || !acc || !count) return null;
  const c = count;
  return {
    confidence: conf.map((s, b) => (c[b] ? s / c[b]! : Number.NaN)),
    accuracy: acc.map((s, b) => (c[b] ? s / c[b]! : Number.NaN)),
    count: c,
  };
}

export function reliability(s: SplitScores, bins = 15, mode: CalibrationMode = 'top-label'): Reliability {
  if (!Number.isInteger(bins) || bins < 1 || bins > 1e6) throw new MetricsError('BAD_OPTION', `calibration bins must be an integer in [1, 1e6], got ${bins}`);
  const conf = new Float64Array(bins);
  const hits = new Float64Array(bins);
  const count = new Float64Array(bins);
  const add = (arr: Float64Array | Float32Array, positive: boolean): void => {
    for (let i = 0; i < arr.length; i++) {
      const p = arr[i]!;
      if (!(p >= 0 && p <= 1)) throw new MetricsError('BAD_VALUE', `calibration needs probabilities in [0, 1], got ${p}`);
      let c: number, ok: boolean;
      if (mode === 'top-label') {
        const predPos = p >= 0.5;
        c = predPos ? p : 1 - p;
        ok = predPos === positive;
      } else {
        c = p;
        ok = positive;
      }
      const b = Math.min(Math.floor(c * bins), bins - 1);
      conf[b] = conf[b]! + c;
      if (ok) hits[b] = hits[b]! + 1;
      count[b] = count[b]! + 1;
    }
  };
  add(s.pos, true);
  add(s.neg, false);
  const n = s.pos.length + s.neg.length;
  let ece = 0;
  const out: Reliability = { bins, confidence: [], accuracy: [], count: [], ece: NaN };
  for (let b = 0; b < bins; b++) {
    const k = count[b]!;
    const mc = k ? conf[b]! / k : NaN;
    const ma = k ? hits[b]! / k : NaN;
    out.confidence.push(mc);
    out.accuracy.push(ma);
    out.count.push(k);
    if (k) ece += (k / n) * Math.abs(ma - mc);
  }
  out.ece = n ? ece : NaN;
  return out;
}

/** Binned reliability statistics as plotted and reported (a pooled Reliability without its bin count). */
export interface CalibrationBins {
  /** Mean predicted confidence per bin. */
  confidence: readonly number[];
  /** Observed accuracy (fraction correct / foreground frequency) per bin. */
  accuracy: readonly number[];
  /** Samples (voxels) per bin. */
  count: readonly number[];
}

/** Expected calibration error from binned statistics: Σ n_b/N · |acc_b − conf_b| over non-empty bins. */
export function eceFromBins(b: CalibrationBins): number {
  let total = 0;
  let acc = 0;
  for (let i = 0; i < b.count.length; i++) {
    const n = b.count[i]!;
    if (!(n > 0) || !Number.isFinite(b.accuracy[i]!) || !Number.isFinite(b.confidence[i]!)) continue;
    total += n;
    acc += n * Math.abs(b.accuracy[i]! - b.confidence[i]!);
  }
  return total > 0 ? acc / total : Number.NaN;
}
