/**
 * Triage: which cases a human checks first. A per-case uncertainty score
 * flags a case when it reaches a threshold chosen on validation cases so that
 * the flagged ones hold a wanted share of the failures (Dice below a bar),
 * and the AUROC says how well the score ranks failures above successes.
 */

/**
 * Area under the ROC curve of `scores` separating positives from negatives:
 * the Mann-Whitney U of the positives over n_pos * n_neg, ties counting half.
 */
export function auroc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const n = scores.length;
  if (positive.length !== n) throw new Error(`${n} scores but ${positive.length} labels`);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (const i of idx) if (!Number.isFinite(scores[i]!)) throw new Error(`score ${scores[i]} of case ${i} is not a finite number`);
  idx.sort((a, b) => scores[a]! - scores[b]!);
  // Mid-ranks (1-based) over ties.
  const rank = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) rank[idx[k]!] = r;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (positive[i]) {
      nPos++;
      rankSum += rank[i]!;
    }
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) throw new Error(`AUROC needs both classes: ${nPos} positive and ${nNeg} negative cases`);
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface TriageRule {
  /** A case is flagged for review when its score is at least this. */
  threshold: number;
  /** Dice below which a case counts as a failure. */
  failureDice: number;
  /** Share of the validation failures the flagged cases hold. */
  capturedFailures: number;
  /** Share of the validation cases flagged. */
  flaggedFraction: number;
  /** AUROC of the score for "Dice < failureDice" on the validation cases (null with only one kind). */
  auroc: number | null;
  cases: number;
  failures: number;
}

/**
 * The highest threshold whose flagged cases hold at least `capture` of the
 * failures (default 0.9), i.e. the fewest reviews that catch them. With no
 * failure among the cases, the threshold flags nothing seen (above the
 * largest score).
 */
export function chooseTriageRule(scores: number[], dice: number[], o: { failureDice?: number; capture?: number } = {}): TriageRule {
  if (scores.length !== dice.length) throw new Error(`${scores.length} scores but ${dice.length} Dice values`);
  if (scores.length === 0) throw new Error('triage needs validation cases');
  const failureDice = o.failureDice ?? 0.8;
  const capture = o.capture ?? 0.9;
  const failed = dice.map((d) => d < failureDice);
  const failures = failed.filter(Boolean).length;
  const n = scores.length;
  let threshold: number;
  if (failures === 0) threshold = Math.max(...scores) + Number.EPSILON * Math.max(1, Math.abs(Math.max(...scores)));
  else {
    const failScores = scores.filter((_, i) => failed[i]).sort((a, b) => b - a);
    const need = Math.ceil(capture * failures);
    threshold = failScores[need - 1]!;
  }
  const flagged = scores.map((s) => s >= threshold);
  const caught = flagged.filter((f, i) => f && failed[i]).length;
  return {
    threshold,
    failureDice,
    capturedFailures: failures ? caught / failures : 1,
    flaggedFraction: flagged.filter(Boolean).length / n,
    auroc: failures > 0 && failures < n ? auroc(scores, failed) : null,
    cases: n,
    failures,
  };
}
