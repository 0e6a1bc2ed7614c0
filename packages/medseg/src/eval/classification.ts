/**
 * Image-level classification metrics: accuracy, ROC AUC (binary, and macro
 * one-vs-rest for more classes), balanced accuracy, and sensitivity /
 * specificity at an operating point chosen on validation data (the lowest
 * threshold reaching a target sensitivity, or the Youden point). Calibration
 * (ECE, temperature scaling) comes from calibration.ts.
 *
 * Probabilities are given as [N, K] rows (case i's class k at i * K + k);
 * a binary problem's positive-class score is column 1.
 */

export interface Confusion {
  threshold: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  /** tp / (tp + fn): recall of the positive class. */
  sensitivity: number;
  /** tn / (tn + fp): recall of the negative class. */
  specificity: number;
  /** (sensitivity + specificity) / 2. */
  balancedAccuracy: number;
  accuracy: number;
}

function checkBinary(scores: ArrayLike<number>, labels: ArrayLike<number>): void {
  if (scores.length !== labels.length) throw new Error(`${scores.length} scores for ${labels.length} labels`);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`binary label ${labels[i]} at case ${i} is not 0 or 1`);
    if (!Number.isFinite(scores[i]!)) throw new Error(`score ${scores[i]} at case ${i} is not finite`);
  }
}

/**
 * Area under the ROC curve of scores for binary labels: the probability that
 * a random positive scores above a random negative, ties counting half
 * (the Mann-Whitney U statistic from mid-ranks). NaN without both classes.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkBinary(scores, labels);
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const midRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!] === 1) {
        rankSumPos += midRank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** The confusion counts and rates of "positive when score >= threshold". */
export function confusionAt(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): Confusion {
  checkBinary(scores, labels);
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = scores[i]! >= threshold;
    if (labels[i] === 1) p ? tp++ : fn++;
    else p ? fp++ : tn++;
  }
  const sensitivity = tp + fn ? tp / (tp + fn) : NaN;
  const specificity = tn + fp ? tn / (tn + fp) : NaN;
  return {
    threshold,
    tp,
    fp,
    tn,
    fn,
    sensitivity,
    specificity,
    balancedAccuracy: (sensitivity + specificity) / 2,
    accuracy: (tp + tn) / Math.max(1, labels.length),
  };
}

export type OperatingPointRule = { kind: 'youden' } | { kind: 'sensitivity'; target: number };

/**
 * The threshold of an operating point, chosen among the distinct scores
 * (validation data): 'youden' maximises sensitivity + specificity - 1 (the
 * highest such threshold on ties); 'sensitivity' is the highest threshold
 * whose sensitivity reaches the target (so specificity is the best possible
 * at that sensitivity).
 */
export function chooseThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>, rule: OperatingPointRule): Confusion {
  checkBinary(scores, labels);
  if (rule.kind === 'sensitivity' && !(rule.target > 0 && rule.target <= 1)) throw new Error(`target sensitivity must be in (0, 1], got ${rule.target}`);
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let pos = 0;
  for (let i = 0; i < n; i++) pos += labels[i]!;
  const neg = n - pos;
  if (pos === 0 || neg === 0) throw new Error('choosing an operating point needs both classes in the data');
  // Sweep thresholds from the highest score down; at each distinct score s, "score >= s" is positive.
  let tp = 0;
  let fp = 0;
  let best: { threshold: number; value: number } | null = null;
  for (let i = 0; i < n;) {
    const s = scores[order[i]!]!;
    while (i < n && scores[order[i]!] === s) {
      if (labels[order[i]!] === 1) tp++;
      else fp++;
      i++;
    }
    const sens = tp / pos;
    const spec = 1 - fp / neg;
    if (rule.kind === 'sensitivity') {
      if (sens >= rule.target - 1e-12) return confusionAt(scores, labels, s);
    } else if (!best || sens + spec - 1 > best.value + 1e-12) {
      best = { threshold: s, value: sens + spec - 1 };
    }
  }
  return confusionAt(scores, labels, best!.threshold);
}

export interface ClassificationMetrics {
  cases: number;
  /** Fraction whose argmax class (binary: score >= threshold when one is given) is the label. */
  accuracy: number;
  /** Binary: ROC AUC of the class-1 probability; K > 2: the mean of one-vs-rest AUCs. */
  auc: number;
  /** Mean over classes of the per-class recall. */
  balancedAccuracy: number;
  /** Binary only: counts and rates at the threshold (0.5 when none is given). */
  operatingPoint?: Confusion;
}

/** Metrics of probabilities [N, K] (rows) against class labels. */
export function classificationMetrics(
  probabilities: ArrayLike<number>,
  labels: ArrayLike<number>,
  K: number,
  o: { threshold?: number } = {},
): ClassificationMetrics {
  const n = labels.length;
  if (!(Number.isInteger(K) && K >= 2)) throw new Error(`classification needs at least two classes, got ${K}`);
  if (probabilities.length !== n * K) throw new Error(`probabilities have ${probabilities.length} values, expected ${n} cases x ${K} classes`);
  if (n === 0) throw new Error('classification metrics need at least one case');
  const predicted = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!(Number.isInteger(y) && y >= 0 && y < K)) throw new Error(`label ${y} at case ${i} is not a class index below ${K}`);
    let best = 0;
    for (let k = 1; k < K; k++) if (probabilities[i * K + k]! > probabilities[i * K + best]!) best = k;
    predicted[i] = best;
  }
  const column = (k: number) => Float64Array.from({ length: n }, (_, i) => probabilities[i * K + k]!);
  const oneVsRest = (k: number) => Float64Array.from({ length: n }, (_, i) => (labels[i] === k ? 1 : 0));
  if (K === 2) {
    const point = confusionAt(column(1), labels, o.threshold ?? 0.5);
    if (o.threshold !== undefined) for (let i = 0; i < n; i++) predicted[i] = column(1)[i]! >= o.threshold ? 1 : 0;
    return { cases: n, ...summary(predicted, labels, K), auc: rocAuc(column(1), labels), operatingPoint: point };
  }
  const aucs = Array.from({ length: K }, (_, k) => rocAuc(column(k), oneVsRest(k))).filter(Number.isFinite);
  return { cases: n, ...summary(predicted, labels, K), auc: aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : NaN };
}

function summary(predicted: Int32Array, labels: ArrayLike<number>, K: number): { accuracy: number; balancedAccuracy: number } {
  const hit = new Float64Array(K);
  const count = new Float64Array(K);
  let correct = 0;
  for (let i = 0; i < predicted.length; i++) {
    count[labels[i]!]!++;
    if (predicted[i] === labels[i]) {
      correct++;
      hit[labels[i]!]!++;
    }
  }
  const recalls = [...count].map((c, k) => (c ? hit[k]! / c : NaN)).filter(Number.isFinite);
  return { accuracy: correct / predicted.length, balancedAccuracy: recalls.reduce((a, b) => a + b, 0) / recalls.length };
}

/** softmax(logits / T) of every row of [N, K] logits. */
export function softmaxRows(logits: ArrayLike<number>, K: number, temperature = 1): Float64Array {
  const n = logits.length / K;
  if (!Number.isInteger(n)) throw new Error(`${logits.length} logits are not rows of ${K} classes`);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, logits[i * K + k]! / temperature);
    let s = 0;
    for (let k = 0; k < K; k++) s += out[i * K + k] = Math.exp(logits[i * K + k]! / temperature - m);
    for (let k = 0; k < K; k++) out[i * K + k]! /= s;
  }
  return out;
}
