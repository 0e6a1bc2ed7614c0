/** Wilcoxon signed-rank test (exact and normal approximation) and the average ranks it is built on. */
import { MedsegStatsError } from './errors.ts';
import { normalSf } from './normal.ts';

/** Average ranks (1-based) of values, ties sharing the mean of their ranks (scipy `rankdata`). */
export function rankAverage(values: readonly number[]): { ranks: number[]; tieSizes: number[] } {
  const idx = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Array<number>(values.length);
  const tieSizes: number[] = [];
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && values[idx[j + 1]!] === values[idx[i]!]) j++;
    const r = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = r;
    if (j > i) tieSizes.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, tieSizes };
}

/** Exact null distribution of W+ for n untied, nonzero differences: counts[k] of 2^n sign patterns. */
function signedRankCounts(n: number): Float64Array {
  const max = (n * (n + 1)) / 2;
  const c = new Float64Array(max + 1);
  c[0] = 1;
  for (let r = 1; r <= n; r++) {
    for (let k = Math.min(max, (r * (r + 1)) / 2); k >= r; k--) c[k]! += c[k - r]!;
  }
  return c;
}

export type Alternative = 'two-sided' | 'greater' | 'less';

export interface WilcoxonOptions {
  alternative?: Alternative;
  /** 'auto' (exact when n ≤ 50 with no ties and no zeros), 'exact' or 'approx'. */
  method?: 'auto' | 'exact' | 'approx';
  /** Continuity correction of the normal approximation (default true, as R's wilcox.test; scipy's default is false). */
  correction?: boolean;
}

export interface WilcoxonResult {
  /** min(W+, W−) for two-sided tests, W+ for one-sided (scipy's convention). */
  statistic: number;
  wPlus: number;
  wMinus: number;
  pValue: number;
  method: 'exact' | 'approx' | 'none';
  /** z of the normal approximation (NaN for the exact test). */
  z: number;
  /** Nonzero differences that were ranked. */
  n: number;
  /** Zero differences dropped before ranking (zero_method 'wilcox'). */
  nZero: number;
  /** Whether any absolute differences were tied. */
  ties: boolean;
  /** Matched-pairs rank-biserial correlation (W+ − W−)/(W+ + W−), in [−1, 1]; positive when differences tend to be > 0. */
  rankBiserial: number;
  warning: string;
}

/**
 * Wilcoxon signed-rank test of differences d (x − y).
 *
 * Zero differences are dropped before ranking (scipy's default zero_method
 * 'wilcox'). The exact distribution is used only when it is valid: no ties and
 * no zeros (scipy ≥ 1.11 behaves this way; 1.10 still used it with ties). The
 * normal approximation corrects the variance for tied ranks and, by default,
 * applies the continuity correction.
 */
export function wilcoxonSignedRank(differences: readonly number[], opts: WilcoxonOptions = {}): WilcoxonResult {
  const alternative = opts.alternative ?? 'two-sided';
  const method = opts.method ?? 'auto';
  const correction = opts.correction ?? true;
  for (const d of differences) {
    if (!Number.isFinite(d)) throw new MedsegStatsError('BAD_INPUT', 'Wilcoxon differences must be finite; drop NaN/Inf pairs first');
  }
  const nonzero = differences.filter((d) => d !== 0);
  const nZero = differences.length - nonzero.length;
  const n = nonzero.length;
  const empty: WilcoxonResult = {
    statistic: Number.NaN,
    wPlus: 0,
    wMinus: 0,
    pValue: Number.NaN,
    method: 'none',
    z: Number.NaN,
    n,
    nZero,
    ties: false,
    rankBiserial: Number.NaN,
    warning: differences.length === 0 ? 'no pairs' : 'all differences are zero: test undefined',
  };
  if (n === 0) return empty;
  const { ranks, tieSizes } = rankAverage(nonzero.map(Math.abs));
  let wPlus = 0;
  let wMinus = 0;
  nonzero.forEach((d, i) => {
    if (d > 0) wPlus += ranks[i]!;
    else wMinus += ranks[i]!;
  });
  const ties = tieSizes.length > 0;
  const statistic = alternative === 'two-sided' ? Math.min(wPlus, wMinus) : wPlus;
  const rankBiserial = (wPlus - wMinus) / (wPlus + wMinus);
  const exactValid = !ties && nZero === 0;
  let useExact = method === 'exact' || (method === 'auto' && n <= 50);
  const warnings: string[] = [];
  if (useExact && !exactValid) {
    useExact = false;
    if (method === 'exact') warnings.push('exact p-value needs no ties and no zero differences: used the normal approximation');
  }
  if (useExact) {
    const counts = signedRankCounts(n);
    const total = 2 ** n;
    const w = Math.round(wPlus);
    let pLess = 0;
    for (let k = 0; k <= w; k++) pLess += counts[k]!;
    let pGreater = 0;
    for (let k = w; k < counts.length; k++) pGreater += counts[k]!;
    pLess /= total;
    pGreater /= total;
    let p: number;
    if (alternative === 'two-sided') p = w * 2 === counts.length - 1 ? 1 : 2 * Math.min(pLess, pGreater);
    else if (alternative === 'greater') p = pGreater;
    else p = pLess;
    return {
      statistic,
      wPlus,
      wMinus,
      pValue: Math.min(1, Math.max(0, p)),
      method: 'exact',
      z: Number.NaN,
      n,
      nZero,
      ties,
      rankBiserial,
      warning: warnings.join('; '),
    };
  }
  if (n < 10) warnings.push(`normal approximation with only ${n} nonzero differences`);
  const mn = (n * (n + 1)) / 4;
  let v = n * (n + 1) * (2 * n + 1);
  for (const t of tieSizes) v -= 0.5 * t * (t * t - 1);
  const se = Math.sqrt(v / 24);
  let cc = 0;
  if (correction) {
    if (alternative === 'two-sided') cc = 0.5 * Math.sign(statistic - mn);
    else cc = alternative === 'less' ? -0.5 : 0.5;
  }
  const z = se > 0 ? (statistic - mn - cc) / se : Number.NaN;
  let p: number;
  if (alternative === 'two-sided') p = 2 * normalSf(Math.abs(z));
  else if (alternative === 'greater') p = normalSf(z);
  else p = 1 - normalSf(z);
  return {
    statistic,
    wPlus,
    wMinus,
    pValue: Math.min(1, p),
    method: 'approx',
    z,
    n,
    nZero,
    ties,
    rankBiserial,
    warning: warnings.join('; '),
  };
}
