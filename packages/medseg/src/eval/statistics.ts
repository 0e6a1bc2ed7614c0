/**
 * Statistics over per-case metric rows: descriptive aggregates with bootstrap
 * confidence intervals, paired Wilcoxon signed-rank comparisons, subgroup
 * breakdowns and inference-time summaries.
 *
 * Non-finite metric values are never folded into a mean: NaN (e.g. Dice of an
 * empty reference and empty prediction, depending on the metric's convention)
 * and ±Infinity (e.g. HD95 when the prediction is empty) are counted and
 * reported, and every statistic here is computed over the finite values only.
 * The counts travel with each summary so a report can say what was excluded.
 */
import { cpus, platform, arch, totalmem } from 'node:os';
import { median, quantileSorted } from '../util/quantile.ts';
import { seededRandom } from '../util/random.ts';

/** One row per (model, case, label): the metrics computed for it. */
export interface MetricRow {
  model: string;
  case: string;
  label: number | string;
  [metric: string]: number | string;
}

/** Per-case subgroup columns: caseId -> column -> value (e.g. site, scanner, sex). */
export type Subgroups = Record<string, Record<string, string>>;

export type Direction = 'higher' | 'lower';

const ID_COLUMNS = new Set(['model', 'case', 'label']);

export class MedsegStatsError extends Error {
  override readonly name = 'MedsegStatsError';
  constructor(
    readonly code: 'BAD_INPUT' | 'NO_DATA' | 'UNPAIRED',
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- values

/**
 * Metric value of a row as a number. Rows that went through JSON carry NaN and
 * Infinity as strings or null, so those spellings are accepted; a missing
 * metric is `undefined` so it can be counted apart from NaN.
 */
export function metricValue(row: MetricRow, metric: string): number | undefined {
  const v = (row as Record<string, unknown>)[metric];
  if (typeof v === 'number') return v;
  if (v === null) return Number.NaN;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'nan') return Number.NaN;
    if (s === 'inf' || s === '+inf' || s === 'infinity' || s === '+infinity') return Number.POSITIVE_INFINITY;
    if (s === '-inf' || s === '-infinity') return Number.NEGATIVE_INFINITY;
    if (s !== '' && Number.isFinite(Number(s))) return Number(s);
    return Number.NaN;
  }
  return undefined;
}

/** Metric columns in first-appearance order: every non-id key holding a number in some row. */
export function metricColumns(rows: readonly MetricRow[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (ID_COLUMNS.has(k) || seen.has(k)) continue;
      if (typeof v === 'number') {
        seen.add(k);
        out.push(k);
      }
    }
  }
  return out;
}

/** Distinct values of a row field, in first-appearance order. */
export function distinct<K extends 'model' | 'case' | 'label'>(rows: readonly MetricRow[], key: K): MetricRow[K][] {
  const seen = new Set<string>();
  const out: MetricRow[K][] = [];
  for (const r of rows) {
    const k = String(r[key]);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(r[key]);
    }
  }
  return out;
}

/**
 * Whether larger values of a metric are better. Known names are matched by
 * pattern; anything unrecognised is assumed higher-is-better unless the caller
 * says otherwise.
 */
const LOWER_IS_BETTER = new Set(['hd', 'hd95', 'hd100', 'assd', 'asd', 'masd', 'msd', 'ece', 'mce', 'nll', 'ms', 'seconds', 'fp', 'fn', 'fpr', 'fnr', 'avd', 'rve']);

export function metricDirection(metric: string, overrides?: Record<string, Direction>): Direction {
  if (overrides?.[metric]) return overrides[metric];
  const m = metric.toLowerCase();
  if (/hausdorff|distance|error|time|brier/.test(m)) return 'lower';
  const tokens = m.split(/[^a-z0-9]+/);
  if (tokens.some((t) => LOWER_IS_BETTER.has(t))) return 'lower';
  return 'higher';
}

// ---------------------------------------------------------------- descriptive

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/** Sample standard deviation (ddof = 1, numpy `std(ddof=1)`); NaN for fewer than 2 values. */
export function sampleStd(values: ArrayLike<number>): number {
  const n = values.length;
  if (n < 2) return Number.NaN;
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < n; i++) s += (values[i]! - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

// ---------------------------------------------------------------- bootstrap

export interface BootstrapOptions {
  /** Number of bootstrap resamples (default 2000). */
  resamples?: number;
  /** PRNG seed (default 12345): the same seed gives the same interval. */
  seed?: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

export interface Interval {
  lower: number;
  upper: number;
  level: number;
}

/** Percentile-bootstrap confidence interval of the mean of finite values. */
export function bootstrapMeanCI(values: readonly number[], opts: BootstrapOptions = {}): Interval {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1 || resamples > 1e7) {
    throw new MedsegStatsError('BAD_INPUT', `bootstrap resamples must be an integer in [1, 1e7], got ${resamples}`);
  }
  if (!(level > 0 && level < 1)) throw new MedsegStatsError('BAD_INPUT', `confidence level must be in (0, 1), got ${level}`);
  const n = values.length;
  if (n === 0) return { lower: Number.NaN, upper: Number.NaN, level };
  const rand = seededRandom(opts.seed ?? 12345);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[Math.floor(rand() * n)]!;
    means[b] = s / n;
  }
  means.sort();
  const alpha = (1 - level) / 2;
  return { lower: quantileSorted(means, alpha), upper: quantileSorted(means, 1 - alpha), level };
}

// ---------------------------------------------------------------- summaries

export interface Summary {
  /** Rows considered (all values, finite or not). */
  n: number;
  /** Finite values: the ones every statistic below is computed from. */
  nFinite: number;
  nNaN: number;
  nPosInf: number;
  nNegInf: number;
  /** Rows where the metric was absent. */
  nMissing: number;
  mean: number;
  median: number;
  /** Sample standard deviation (ddof = 1). */
  std: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
  ci: Interval;
  /** Human-readable note on excluded values, empty when nothing was excluded. */
  note: string;
}

/** Describe what was left out of a summary, e.g. "2 NaN, 1 +Inf excluded". */
export function exclusionNote(s: Pick<Summary, 'nNaN' | 'nPosInf' | 'nNegInf' | 'nMissing'>): string {
  const parts: string[] = [];
  if (s.nNaN) parts.push(`${s.nNaN} NaN`);
  if (s.nPosInf) parts.push(`${s.nPosInf} +Inf`);
  if (s.nNegInf) parts.push(`${s.nNegInf} −Inf`);
  if (s.nMissing) parts.push(`${s.nMissing} missing`);
  return parts.length ? `${parts.join(', ')} excluded from statistics` : '';
}

/** Summarise raw values (non-finite ones counted, then excluded). */
export function summarize(values: readonly (number | undefined)[], opts: BootstrapOptions = {}): Summary {
  const finite: number[] = [];
  let nNaN = 0;
  let nPosInf = 0;
  let nNegInf = 0;
  let nMissing = 0;
  for (const v of values) {
    if (v === undefined) nMissing++;
    else if (Number.isNaN(v)) nNaN++;
    else if (v === Number.POSITIVE_INFINITY) nPosInf++;
    else if (v === Number.NEGATIVE_INFINITY) nNegInf++;
    else finite.push(v);
  }
  const sorted = [...finite].sort((a, b) => a - b);
  const counts = { nNaN, nPosInf, nNegInf, nMissing };
  return {
    n: values.length,
    nFinite: finite.length,
    ...counts,
    mean: mean(finite),
    median: quantileSorted(sorted, 0.5),
    std: sampleStd(finite),
    min: sorted.length ? sorted[0]! : Number.NaN,
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    q1: quantileSorted(sorted, 0.25),
    q3: quantileSorted(sorted, 0.75),
    ci: bootstrapMeanCI(finite, opts),
    note: exclusionNote(counts),
  };
}

export interface AggregateRow extends Summary {
  model: string;
  label: number | string;
  metric: string;
}

export interface AggregateOptions {
  bootstrap?: BootstrapOptions;
  /** Metrics to aggregate (default: every metric column). */
  metrics?: string[];
}

function checkRows(rows: readonly MetricRow[]): void {
  if (!Array.isArray(rows)) throw new MedsegStatsError('BAD_INPUT', 'metric rows must be an array');
  rows.forEach((r, i) => {
    if (r === null || typeof r !== 'object') throw new MedsegStatsError('BAD_INPUT', `row ${i} is not an object`);
    if (typeof r.model !== 'string' || r.model === '') throw new MedsegStatsError('BAD_INPUT', `row ${i} has no model name`);
    if (typeof r.case !== 'string' || r.case === '') throw new MedsegStatsError('BAD_INPUT', `row ${i} has no case id`);
    if (typeof r.label !== 'number' && typeof r.label !== 'string') {
      throw new MedsegStatsError('BAD_INPUT', `row ${i} has no label`);
    }
  });
}

function groupKey(...parts: (string | number)[]): string {
  return JSON.stringify(parts.map(String));
}

/** Mean, median, std, min, max, n and bootstrap CI per model × label × metric. */
export function aggregate(rows: readonly MetricRow[], opts: AggregateOptions = {}): AggregateRow[] {
  checkRows(rows);
  const metrics = opts.metrics ?? metricColumns(rows);
  const groups = new Map<string, MetricRow[]>();
  for (const r of rows) {
    const k = groupKey(r.model, r.label);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(r);
  }
  const out: AggregateRow[] = [];
  for (const model of distinct(rows, 'model')) {
    for (const label of distinct(rows, 'label')) {
      const g = groups.get(groupKey(model, label));
      if (!g) continue;
      for (const metric of metrics) {
        const s = summarize(
          g.map((r) => metricValue(r, metric)),
          opts.bootstrap,
        );
        out.push({ model, label, metric, ...s });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- normal distribution

/**
 * Complementary error function to near double precision: a power series for
 * small |x| and a continued fraction (modified Lentz) in the tail, so normal
 * tail p-values stay accurate where 1 - erf(x) would cancel.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x > 27) return 0;
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let i = 1; i < 500; i++) {
    const a = i / 2;
    D = x + a * D;
    D = Math.abs(D) < tiny ? tiny : D;
    C = x + a / C;
    C = Math.abs(C) < tiny ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/** Upper tail of the standard normal, P(Z > z). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

// ---------------------------------------------------------------- Wilcoxon

/** Average ranks (1-based) of values, ties sharing the mean of their ranks (scipy `rankdata`). */
export function rankAverage(values: readonly number[]): { ranks: number[]; tieSizes: number[] } {
  const idx = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Array<number>(values.length);
  const tieSizes: number[] = [];
  for (let i = 0; i < idx.length; ) {
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
    statistic: Number.NaN, wPlus: 0, wMinus: 0, pValue: Number.NaN, method: 'none', z: Number.NaN,
    n, nZero, ties: false, rankBiserial: Number.NaN,
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
      statistic, wPlus, wMinus, pValue: Math.min(1, Math.max(0, p)), method: 'exact', z: Number.NaN,
      n, nZero, ties, rankBiserial, warning: warnings.join('; '),
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
    statistic, wPlus, wMinus, pValue: Math.min(1, p), method: 'approx', z, n, nZero, ties, rankBiserial,
    warning: warnings.join('; '),
  };
}

export interface PairedComparison {
  modelA: string;
  modelB: string;
  label: number | string;
  metric: string;
  direction: Direction;
  /** Cases present for both models. */
  nCases: number;
  /** Pairs with a non-finite value on either side, left out of the test. */
  nExcluded: number;
  /** Cases present for only one model. */
  nUnpaired: number;
  /** Median of A − B over the finite pairs (zeros included). */
  medianDifference: number;
  meanDifference: number;
  wilcoxon: WilcoxonResult;
  /** Holm-adjusted p when computed as part of a family (see holmAdjust). */
  pAdjusted?: number;
}

/** Paired per-case values of two models for one label and metric, keyed on case id. */
export function pairValues(
  rows: readonly MetricRow[],
  modelA: string,
  modelB: string,
  label: number | string,
  metric: string,
): { cases: string[]; a: number[]; b: number[]; nUnpaired: number } {
  const byCase = (model: string) => {
    const m = new Map<string, number | undefined>();
    for (const r of rows) {
      if (r.model !== model || String(r.label) !== String(label)) continue;
      if (m.has(r.case)) throw new MedsegStatsError('BAD_INPUT', `duplicate row for model ${model}, case ${r.case}, label ${label}`);
      m.set(r.case, metricValue(r, metric));
    }
    return m;
  };
  const ma = byCase(modelA);
  const mb = byCase(modelB);
  const cases: string[] = [];
  const a: number[] = [];
  const b: number[] = [];
  let nUnpaired = 0;
  for (const [c, va] of ma) {
    if (!mb.has(c)) {
      nUnpaired++;
      continue;
    }
    cases.push(c);
    a.push(va ?? Number.NaN);
    b.push(mb.get(c) ?? Number.NaN);
  }
  for (const c of mb.keys()) if (!ma.has(c)) nUnpaired++;
  return { cases, a, b, nUnpaired };
}

/** Paired comparison of two models on the cases they share: Wilcoxon, effect size, median difference. */
export function comparePaired(
  rows: readonly MetricRow[],
  modelA: string,
  modelB: string,
  label: number | string,
  metric: string,
  opts: WilcoxonOptions & { directions?: Record<string, Direction> } = {},
): PairedComparison {
  checkRows(rows);
  const { a, b, nUnpaired } = pairValues(rows, modelA, modelB, label, metric);
  if (a.length === 0) {
    throw new MedsegStatsError('UNPAIRED', `models ${modelA} and ${modelB} share no cases for label ${label}`);
  }
  const d: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (Number.isFinite(a[i]!) && Number.isFinite(b[i]!)) d.push(a[i]! - b[i]!);
  }
  return {
    modelA, modelB, label, metric,
    direction: metricDirection(metric, opts.directions),
    nCases: a.length,
    nExcluded: a.length - d.length,
    nUnpaired,
    medianDifference: median(d),
    meanDifference: mean(d),
    wilcoxon: wilcoxonSignedRank(d, opts),
  };
}

/** Holm–Bonferroni step-down adjustment (NaN p-values pass through and do not count). */
export function holmAdjust(pValues: readonly number[]): number[] {
  const idx = pValues.map((p, i) => [p, i] as const).filter(([p]) => !Number.isNaN(p)).sort((x, y) => x[0] - y[0]);
  const m = idx.length;
  const out = pValues.map(() => Number.NaN);
  let running = 0;
  idx.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    out[i] = running;
  });
  return out;
}

// ---------------------------------------------------------------- subgroups

export interface SubgroupRow extends Summary {
  model: string;
  label: number | string;
  metric: string;
  group: string;
}

export interface SubgroupGap {
  model: string;
  label: number | string;
  metric: string;
  direction: Direction;
  best: { group: string; mean: number };
  worst: { group: string; mean: number };
  /** |best mean − worst mean|: the spread a reviewer asks about for fairness. */
  gap: number;
}

export interface SubgroupBreakdown {
  column: string;
  groups: string[];
  rows: SubgroupRow[];
  gaps: SubgroupGap[];
  /** Cases with no value for the column, grouped as MISSING_GROUP. */
  nCasesMissing: number;
}

export const MISSING_GROUP = '(not recorded)';

/** Per-group aggregates for one subgroup column, and the best–worst gap per model × label × metric. */
export function subgroupBreakdown(
  rows: readonly MetricRow[],
  subgroups: Subgroups,
  column: string,
  opts: AggregateOptions & { directions?: Record<string, Direction> } = {},
): SubgroupBreakdown {
  checkRows(rows);
  const groupOf = (c: string): string => {
    const v = subgroups[c]?.[column];
    return v === undefined || v === '' ? MISSING_GROUP : String(v);
  };
  const tagged = rows.map((row) => ({ row, group: groupOf(row.case) }));
  const groups = [...new Set(tagged.map((t) => t.group))].sort((x, y) =>
    x === MISSING_GROUP ? 1 : y === MISSING_GROUP ? -1 : x.localeCompare(y, undefined, { numeric: true }),
  );
  const missingCases = new Set(rows.filter((r) => groupOf(r.case) === MISSING_GROUP).map((r) => r.case));
  const metrics = opts.metrics ?? metricColumns(rows);
  const out: SubgroupRow[] = [];
  const gaps: SubgroupGap[] = [];
  for (const model of distinct(rows, 'model')) {
    for (const label of distinct(rows, 'label')) {
      for (const metric of metrics) {
        const per: SubgroupRow[] = [];
        for (const group of groups) {
          const vals = tagged
            .filter((t) => t.row.model === model && String(t.row.label) === String(label) && t.group === group)
            .map((t) => metricValue(t.row, metric));
          if (vals.length === 0) continue;
          per.push({ model, label, metric, group, ...summarize(vals, opts.bootstrap) });
        }
        out.push(...per);
        const dir = metricDirection(metric, opts.directions);
        const scored = per.filter((g) => g.group !== MISSING_GROUP && Number.isFinite(g.mean));
        if (scored.length >= 2) {
          const sorted = [...scored].sort((x, y) => (dir === 'higher' ? y.mean - x.mean : x.mean - y.mean));
          const best = sorted[0]!;
          const worst = sorted[sorted.length - 1]!;
          gaps.push({
            model, label, metric, direction: dir,
            best: { group: best.group, mean: best.mean },
            worst: { group: worst.group, mean: worst.mean },
            gap: Math.abs(best.mean - worst.mean),
          });
        }
      }
    }
  }
  return { column, groups, rows: out, gaps, nCasesMissing: missingCases.size };
}

// ---------------------------------------------------------------- inference time

export interface Hardware {
  cpuModel: string;
  cores: number;
  platform: string;
  arch: string;
  totalMemoryGiB: number;
  node: string;
}

export function hardwareInfo(): Hardware {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    platform: platform(),
    arch: arch(),
    totalMemoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
  };
}

export interface TimeSummary {
  n: number;
  /** Non-finite or negative timings dropped. */
  nInvalid: number;
  medianMs: number;
  p95Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** Intra-op threads used during timing, null when the caller did not say. */
  threads: number | null;
  hardware: Hardware;
}

/** Median and 95th percentile (numpy linear) of per-case inference times, with the machine they ran on. */
export function summarizeInferenceTimes(
  timesMs: readonly number[] | Record<string, number>,
  opts: { threads?: number; hardware?: Hardware } = {},
): TimeSummary {
  const all = Array.isArray(timesMs) ? (timesMs as number[]) : Object.values(timesMs);
  const valid = all.filter((t) => Number.isFinite(t) && t >= 0).sort((a, b) => a - b);
  return {
    n: valid.length,
    nInvalid: all.length - valid.length,
    medianMs: quantileSorted(valid, 0.5),
    p95Ms: quantileSorted(valid, 0.95),
    meanMs: mean(valid),
    minMs: valid.length ? valid[0]! : Number.NaN,
    maxMs: valid.length ? valid[valid.length - 1]! : Number.NaN,
    threads: opts.threads ?? null,
    hardware: opts.hardware ?? hardwareInfo(),
  };
}
