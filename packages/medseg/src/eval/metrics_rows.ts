/**
 * Flat rows for CSV / JSON: one per case and label, every scalar metric a
 * column. The reliability curve (arrays) stays in the CaseEvaluation.
 */
import type { CaseEvaluation } from './metrics.ts';

export interface MetricRow {
  case: string;
  label: number;
  [metric: string]: number | string;
}

export function toRows(ev: CaseEvaluation): MetricRow[] {
  return ev.classes.map((m) => {
    const row: MetricRow = { case: ev.case, label: m.label };
    for (const [k, v] of Object.entries(m)) if (typeof v === 'number' && k !== 'label') row[k] = v;
    return row;
  });
}

/**
 * JSON.stringify replacer: JSON has no NaN/Infinity, so they are written as the
 * strings "NaN", "Infinity", "-Infinity" (statistics' metricValue reads them back).
 */
export function jsonNumberReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

/** A row with its non-finite numbers spelled as jsonNumberReplacer spells them. */
export function jsonSafeRow(r: MetricRow): MetricRow {
  const out: MetricRow = { case: r.case, label: r.label };
  for (const [k, v] of Object.entries(r)) out[k] = jsonNumberReplacer(k, v) as number | string;
  return out;
}
