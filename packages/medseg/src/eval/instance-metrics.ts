/**
 * Object-level scores of an instance label map (0 = background, each object
 * its own integer) against a reference one:
 *
 * - Detection at IoU thresholds: predicted and reference objects are matched
 *   one to one where their IoU exceeds the threshold (above 0.5 such a match
 *   is unique, so the matching is exact; below it, pairs are taken greedily
 *   in decreasing IoU). Per threshold: TP, FP, FN, precision, recall, F1 and
 *   the "average precision" TP / (TP + FP + FN) of the 2018 Data Science Bowl
 *   and StarDist; the mean of the latter over 0.5:0.05:0.95 is `meanAp`.
 * - Foreground-restricted Rand and information scores of the ISBI 2012 EM
 *   challenge (Arganda-Carreras et al. 2015): over the pixels the reference
 *   calls an object (reference 0, the membranes, is left out), with p_ij the
 *   joint distribution of (proposal label i, reference label j), s and t its
 *   marginals,
 *     V_Rand split = Σ p_ij² / Σ t_j²,   V_Rand merge = Σ p_ij² / Σ s_i²,
 *     V_Info split = I(S;T) / H(S),     V_Info merge = I(S;T) / H(T),
 *   and V_Rand, V_Info their harmonic means (1 is perfect). `pairs:
 *   'distinct'` counts pairs of different pixels only (Σ n_ij² - n, as the
 *   SNEMI3D challenge and scikit-image's adapted_rand_error), 'all' includes
 *   each pixel with itself (the formula above on probabilities).
 */

type Labels = ArrayLike<number>;

/** Overlap counts of every (predicted, reference) object pair that touches, and each object's size. */
export function overlapTable(
  pred: Labels,
  truth: Labels,
): { pairs: Map<number, Map<number, number>>; predSizes: Map<number, number>; truthSizes: Map<number, number> } {
  if (pred.length !== truth.length) throw new Error(`instance maps differ in size: ${pred.length} vs ${truth.length} voxels`);
  const pairs = new Map<number, Map<number, number>>();
  const predSizes = new Map<number, number>();
  const truthSizes = new Map<number, number>();
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]!;
    const t = truth[i]!;
    if (p) predSizes.set(p, (predSizes.get(p) ?? 0) + 1);
    if (t) truthSizes.set(t, (truthSizes.get(t) ?? 0) + 1);
    if (p && t) {
      let row = pairs.get(p);
      if (!row) pairs.set(p, (row = new Map()));
      row.set(t, (row.get(t) ?? 0) + 1);
    }
  }
  return { pairs, predSizes, truthSizes };
}

export interface DetectionScore {
  threshold: number;
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  /** TP / (TP + FP + FN). */
  ap: number;
}

export const IOU_THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/** Detection scores at each IoU threshold (default 0.5:0.05:0.95) and their mean AP. */
export function detectionScores(pred: Labels, truth: Labels, thresholds: number[] = IOU_THRESHOLDS): { perThreshold: DetectionScore[]; meanAp: number } {
  const { pairs, predSizes, truthSizes } = overlapTable(pred, truth);
  const ious: { p: number; t: number; iou: number }[] = [];
  for (const [p, row] of pairs) for (const [t, n] of row) ious.push({ p, t, iou: n / (predSizes.get(p)! + truthSizes.get(t)! - n) });
  ious.sort((a, b) => b.iou - a.iou || a.p - b.p || a.t - b.t);
  const perThreshold = thresholds.map((threshold) => {
    const usedP = new Set<number>();
    const usedT = new Set<number>();
    for (const m of ious) {
      if (m.iou <= threshold) break;
      if (usedP.has(m.p) || usedT.has(m.t)) continue;
      usedP.add(m.p);
      usedT.add(m.t);
    }
    const tp = usedP.size;
    const fp = predSizes.size - tp;
    const fn = truthSizes.size - tp;
    const precision = tp + fp ? tp / (tp + fp) : truthSizes.size ? 0 : 1;
    const recall = tp + fn ? tp / (tp + fn) : 1;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    const ap = tp + fp + fn ? tp / (tp + fp + fn) : 1;
    return { threshold, tp, fp, fn, precision, recall, f1, ap };
  });
  return { perThreshold, meanAp: perThreshold.reduce((a, s) => a + s.ap, 0) / Math.max(1, perThreshold.length) };
}

export interface RandInfoScores {
  randSplit: number;
  randMerge: number;
  vRand: number;
  infoSplit: number;
  infoMerge: number;
  vInfo: number;
  /** Pixels scored (reference foreground). */
  pixels: number;
}

const harmonic = (a: number, b: number) => (a + b > 0 ? (2 * a * b) / (a + b) : 0);

/** Foreground-restricted V_Rand and V_Info of a proposal against a reference (0 in the reference is not scored; 0 in the proposal is one segment like any other). */
export function randInfoScores(proposal: Labels, reference: Labels, o: { pairs?: 'all' | 'distinct' } = {}): RandInfoScores {
  if (proposal.length !== reference.length) throw new Error(`label maps differ in size: ${proposal.length} vs ${reference.length} pixels`);
  const joint = new Map<string, number>();
  const s = new Map<number, number>();
  const t = new Map<number, number>();
  let n = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]!;
    if (r === 0) continue;
    const p = proposal[i]!;
    n++;
    const k = `${p},${r}`;
    joint.set(k, (joint.get(k) ?? 0) + 1);
    s.set(p, (s.get(p) ?? 0) + 1);
    t.set(r, (t.get(r) ?? 0) + 1);
  }
  if (n === 0) throw new Error('the reference has no foreground pixel to score');
  const self = o.pairs === 'distinct' ? n : 0;
  const sq = (m: Map<unknown, number>) => [...m.values()].reduce((a, v) => a + v * v, 0) - self;
  const sumP2 = sq(joint);
  const randSplit = sumP2 / sq(t);
  const randMerge = sumP2 / sq(s);
  // Entropies in nats of the distributions (counts / n).
  const entropy = (m: Map<unknown, number>) => [...m.values()].reduce((a, v) => a - (v / n) * Math.log(v / n), 0);
  const hS = entropy(s);
  const hT = entropy(t);
  const mutual = hS + hT - entropy(joint);
  // With a single segment on a side its entropy is 0; the score is then 1 if the other side agrees (I = 0 = H) else 0.
  const infoSplit = hS > 0 ? mutual / hS : 1;
  const infoMerge = hT > 0 ? mutual / hT : 1;
  return {
    randSplit: Number.isFinite(randSplit) ? randSplit : 1,
    randMerge: Number.isFinite(randMerge) ? randMerge : 1,
    vRand: harmonic(Number.isFinite(randSplit) ? randSplit : 1, Number.isFinite(randMerge) ? randMerge : 1),
    infoSplit,
    infoMerge,
    vInfo: harmonic(infoSplit, infoMerge),
    pixels: n,
  };
}
