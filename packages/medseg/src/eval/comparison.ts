/**
 * One model against the others evaluated on the same cases: its rank by the
 * mean of a metric, and a paired Wilcoxon signed-rank test against each other
 * model (Holm-adjusted over the family), turned into a plain-language verdict
 * for the model card. The verdict states what the data show, including "no
 * significant difference" and "worse": whether a model wins is measured.
 */
import { MedsegStatsError } from './statistics/errors.ts';
import { comparePaired, holmAdjust } from './statistics/paired.ts';
import { distinct, metricDirection, metricValue, type MetricRow } from './statistics/rows.ts';
import { mean } from './statistics/summary.ts';

export interface OpponentResult {
  model: string;
  mean: number;
  /** Mean of (focus − opponent) over paired finite cases. */
  meanDifference: number;
  nCases: number;
  pValue: number;
  pAdjusted: number;
  /** Matched-pairs rank-biserial correlation of focus − opponent. */
  rankBiserial: number;
  /** 'better' / 'worse' for the focus model when pAdjusted < alpha, otherwise 'no significant difference'. */
  outcome: 'better' | 'worse' | 'no significant difference';
}

export interface ModelComparison {
  focus: string;
  label: number | string;
  metric: string;
  alpha: number;
  focusMean: number;
  /** 1 = best mean; ties share the better rank. */
  rank: number;
  models: number;
  opponents: OpponentResult[];
  /** One sentence saying what the data show. */
  verdict: string;
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : String(v));
const fmtP = (p: number) => (Number.isNaN(p) ? 'n/a' : p < 0.001 ? '< 0.001' : p.toFixed(3));

export function compareToOthers(rows: readonly MetricRow[], focus: string, label: number | string, metric = 'dice', alpha = 0.05): ModelComparison {
  const models = distinct(rows, 'model');
  if (!models.includes(focus)) throw new MedsegStatsError('NO_DATA', `no rows for model ${focus}`);
  const others = models.filter((m) => m !== focus);
  const higher = metricDirection(metric) === 'higher';
  // Mean over finite values, as aggregate() reports it (without its bootstrap, which is not needed here).
  const meanOf = (model: string) =>
    mean(
      rows
        .filter((r) => r.model === model && r.label === label)
        .map((r) => metricValue(r, metric))
        .filter((v): v is number => v !== undefined && Number.isFinite(v)),
    );
  const means = new Map(models.map((m) => [m, meanOf(m)]));
  const focusMean = means.get(focus) ?? Number.NaN;
  const better = (a: number, b: number) => (higher ? a > b : a < b);
  const rank = 1 + others.filter((m) => better(means.get(m) ?? Number.NaN, focusMean)).length;
  const paired = others.map((m) => comparePaired(rows, focus, m, label, metric));
  const adjusted = holmAdjust(paired.map((c) => c.wilcoxon.pValue));
  const opponents: OpponentResult[] = paired.map((c, i) => {
    const pAdjusted = adjusted[i]!;
    const focusAhead = higher ? c.meanDifference > 0 : c.meanDifference < 0;
    return {
      model: c.modelB,
      mean: means.get(c.modelB) ?? Number.NaN,
      meanDifference: c.meanDifference,
      nCases: c.nCases - c.nExcluded,
      pValue: c.wilcoxon.pValue,
      pAdjusted,
      rankBiserial: c.wilcoxon.rankBiserial,
      outcome: pAdjusted < alpha ? (focusAhead ? 'better' : 'worse') : 'no significant difference',
    };
  });
  const count = (o: OpponentResult['outcome']) => opponents.filter((x) => x.outcome === o).length;
  const best = [...opponents].sort((a, b) => (higher ? b.mean - a.mean : a.mean - b.mean))[0];
  let verdict = `${focus} ranks ${rank} of ${models.length} by mean ${metric} (${fmt(focusMean)}) on label ${label}.`;
  if (best) {
    verdict +=
      ` Against the best other model, ${best.model} (${fmt(best.mean)}), the mean paired difference is ${best.meanDifference >= 0 ? '+' : ''}${fmt(best.meanDifference)}` +
      ` (Wilcoxon signed-rank, Holm-adjusted p ${fmtP(best.pAdjusted)}, n = ${best.nCases}): ${best.outcome === 'no significant difference' ? 'no significant difference' : `significantly ${best.outcome}`} at α = ${alpha}.`;
    verdict += ` Against all ${others.length} other model${others.length === 1 ? '' : 's'}: significantly better than ${count('better')}, worse than ${count('worse')}, no significant difference from ${count('no significant difference')}.`;
  }
  return { focus, label, metric, alpha, focusMean, rank, models: models.length, opponents, verdict };
}
