/**
 * Per-case metric rows as the statistics read them: the row type, how a
 * metric value is read back from a row (JSON spellings of NaN/Infinity
 * included), which columns are metrics, and which direction of a metric is
 * better.
 */
import { MedsegStatsError } from './errors.ts';

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
const LOWER_IS_BETTER = new Set([
  'hd',
  'hd95',
  'hd100',
  'assd',
  'asd',
  'masd',
  'msd',
  'ece',
  'mce',
  'nll',
  'ms',
  'seconds',
  'fp',
  'fn',
  'fpr',
  'fnr',
  'avd',
  'rve',
]);

export function metricDirection(metric: string, overrides?: Record<string, Direction>): Direction {
  if (overrides?.[metric]) return overrides[metric];
  const m = metric.toLowerCase();
  if (/hausdorff|distance|error|time|brier/.test(m)) return 'lower';
  const tokens = m.split(/[^a-z0-9]+/);
  if (tokens.some((t) => LOWER_IS_BETTER.has(t))) return 'lower';
  return 'higher';
}

/** Throws MedsegStatsError unless every row has a model name, a case id and a label. */
export function checkRows(rows: readonly MetricRow[]): void {
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
