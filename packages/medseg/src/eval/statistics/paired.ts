/**
 * Paired comparison of two models on the cases they share (Wilcoxon
 * signed-rank, rank-biserial effect size, median difference) and the Holm
 * adjustment for a family of such comparisons.
 */
import { median } from '../../util/quantile.ts';
import { MedsegStatsError } from './errors.ts';
import { checkRows, metricDirection, metricValue, type Direction, type MetricRow } from './rows.ts';
import { mean } from './summary.ts';
import { wilcoxonSignedRank, type WilcoxonOptions, type WilcoxonResult } from './wilcoxon.ts';

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
    modelA,
    modelB,
    label,
    metric,
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
  const idx = pValues
    .map((p, i) => [p, i] as const)
    .filter(([p]) => !Number.isNaN(p))
    .sort((x, y) => x[0] - y[0]);
  const m = idx.length;
  const out = pValues.map(() => Number.NaN);
  let running = 0;
  idx.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    out[i] = running;
  });
  return out;
}
