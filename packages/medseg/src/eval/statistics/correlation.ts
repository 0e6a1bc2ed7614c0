/** Rank correlation, as the faithfulness checks and the report's uncertainty-against-Dice summary use it. */
import { rankAverage } from './wilcoxon.ts';

/** Spearman's rank correlation (average ranks for ties, as scipy.stats.spearmanr); NaN when either side is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`spearman: ${a.length} vs ${b.length} values`);
  const ra = rankAverage(Array.from(a)).ranks;
  const rb = rankAverage(Array.from(b)).ranks;
  const n = ra.length;
  const ma = ra.reduce((s, v) => s + v, 0) / n;
  const mb = rb.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = ra[i]! - ma;
    const db = rb[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}
