/**
 * Descriptive statistics over per-case metric values: mean, sample standard
 * deviation, quartiles and a percentile-bootstrap confidence interval of the
 * mean, per value list and per model × label × metric.
 *
 * Non-finite metric values are never folded into a mean: NaN (e.g. Dice of an
 * empty reference and empty prediction, depending on the metric's convention)
 * and ±Infinity (e.g. HD95 when the prediction is empty) are counted and
 * reported, and every statistic here is computed over the finite values only.
 * The counts travel with each summary so a report can say what was excluded.
 */
import { quantileSorted } from '../../util/quantile.ts';
import { seededRandom } from '../../util/random.ts';
import { MedsegStatsError } from './errors.ts';
import { checkRows, distinct, metricColumns, metricValue, type MetricRow } from './rows.ts';

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
