/**
 * Confusion counts and the overlap metrics derived from them, for one label
 * ("this label vs everything else") inside an optional region.
 */
import type { VoxelArray } from '../io/volume.ts';

export interface Confusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export function confusion(pred: VoxelArray, ref: VoxelArray, label: number, region?: VoxelArray): Confusion {
  let tp = 0,
    fp = 0,
    fn = 0,
    tn = 0;
  const n = pred.length;
  for (let i = 0; i < n; i++) {
    if (region && region[i] === 0) continue;
    const p = pred[i] === label;
    const r = ref[i] === label;
    if (p) {
      if (r) tp++;
      else fp++;
    } else if (r) fn++;
    else tn++;
  }
  return { tp, fp, fn, tn };
}

/**
 * What Dice, IoU and F1 are when prediction and reference are both empty
 * (0/0): 'nan' (default; Metrics Reloaded, and MONAI's ignore_empty=True) or
 * 'one' (MONAI's ignore_empty=False: agreeing on "nothing there" is perfect).
 * An empty reference with a non-empty prediction is always 0, as in Metrics
 * Reloaded and MONAI's ignore_empty=False; MONAI's ignore_empty=True would
 * give NaN there, which hides false positives on cases without the structure.
 */
export type EmptyOverlap = 'nan' | 'one';

export interface OverlapMetrics {
  dice: number;
  iou: number;
  sensitivity: number;
  specificity: number;
  precision: number;
  f1: number;
  accuracy: number;
  /** mm^3 (mm^2 in 2D). */
  predVolume: number;
  refVolume: number;
  /** pred - ref, signed. */
  volumeDiff: number;
  absVolumeDiff: number;
  /** (pred - ref) / ref: -1 when nothing predicted, Infinity when ref is empty and pred is not, NaN when both are empty. */
  relVolumeDiff: number;
}

const ratio = (a: number, b: number): number => (b === 0 ? NaN : a / b);

export function overlapMetrics(c: Confusion, voxelMeasure: number, empty: EmptyOverlap = 'nan'): OverlapMetrics {
  const { tp, fp, fn, tn } = c;
  const bothEmpty = tp + fp + fn === 0;
  const emptyValue = empty === 'one' ? 1 : NaN;
  const dice = bothEmpty ? emptyValue : (2 * tp) / (2 * tp + fp + fn);
  const precision = ratio(tp, tp + fp);
  const sensitivity = ratio(tp, tp + fn);
  const predVolume = (tp + fp) * voxelMeasure;
  const refVolume = (tp + fn) * voxelMeasure;
  const volumeDiff = predVolume - refVolume;
  return {
    dice,
    iou: bothEmpty ? emptyValue : tp / (tp + fp + fn),
    sensitivity,
    specificity: ratio(tn, tn + fp),
    precision,
    // F1 of precision and recall is Dice; written from counts so it is defined exactly when Dice is.
    f1: dice,
    accuracy: ratio(tp + tn, tp + fp + fn + tn),
    predVolume,
    refVolume,
    volumeDiff,
    absVolumeDiff: Math.abs(volumeDiff),
    relVolumeDiff: refVolume === 0 ? (predVolume === 0 ? NaN : Infinity) : volumeDiff / refVolume,
  };
}
