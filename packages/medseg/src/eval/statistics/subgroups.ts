/** Per-subgroup summaries (site, scanner, sex, ...) and the best–worst gap between groups. */
import { checkRows, distinct, metricColumns, metricDirection, metricValue, type Direction, type MetricRow, type Subgroups } from './rows.ts';
import { summarize, type AggregateOptions, type Summary } from './summary.ts';

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
            model,
            label,
            metric,
            direction: dir,
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
