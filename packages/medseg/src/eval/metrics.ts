/**
 * Per-case, per-class segmentation metrics on plain label maps (no engine).
 *
 * Masks are label maps on a grid [nx, ny, nz] (x-fastest, io/volume.ts) with
 * spacing in mm; 2D is nz = 1. With several labels each is scored "label vs the
 * rest". A region mask (e.g. DRIVE's field of view) restricts every metric to
 * the voxels inside it: outside voxels are neither counted nor part of any
 * surface (a structure cut by the region gets a surface along the cut).
 *
 * Definitions (each checked against SciPy/NumPy in metrics.test.ts):
 * - surfaces: mask ^ binary_erosion(mask), 6-connected in 3D, 4-connected in 2D,
 *   image border = background (MONAI get_mask_edges); distances from an exact
 *   anisotropic EDT of the other surface (distance_edt.ts).
 * - HD: max of both directed maxima. HD95: max over the two directions of the
 *   95th percentile (NumPy linear) of that direction's distances (MONAI).
 * - ASSD: mean of the union of both directions' distances (MONAI symmetric ASD).
 * - surface Dice (NSD) at tau mm: share of both surfaces' voxels within tau of
 *   the other surface, every surface voxel weighted 1 — MONAI's
 *   compute_surface_dice(use_subvoxels=False), not DeepMind's surfel-area weighting.
 * - volumes: voxel count x product of the spacing of axes longer than 1 (mm^3, mm^2 in 2D).
 * - AUC: exact Mann–Whitney with ties counted ½; ECE/reliability: probabilistic.ts.
 *
 * Edge cases (P = prediction, R = reference, both restricted to the region):
 *
 * | case                  | Dice, IoU, F1            | sensitivity | precision | specificity | HD, HD95, ASSD | surface Dice | relVolumeDiff | AUC | ECE |
 * |-----------------------|--------------------------|-------------|-----------|-------------|----------------|--------------|---------------|-----|-----|
 * | P = ∅, R = ∅          | NaN ('one' option: 1)    | NaN         | NaN       | TN/(TN+FP)  | NaN            | NaN          | NaN           | NaN | defined |
 * | P ≠ ∅, R = ∅          | 0                        | NaN         | 0         | TN/(TN+FP)  | Infinity       | 0            | Infinity      | NaN | defined |
 * | P = ∅, R ≠ ∅          | 0                        | 0           | NaN       | TN/(TN+FP)  | Infinity       | 0            | -1            | defined | defined |
 * | R covers the region   | defined                  | defined     | defined   | NaN (no negatives) | defined | defined     | defined       | NaN | defined |
 * | empty region          | as P = R = ∅             | NaN         | NaN       | NaN         | NaN            | NaN          | NaN           | NaN | NaN |
 *
 * Never a silent 0 for an undefined distance: NaN means "undefined, leave out
 * of the mean", Infinity means "one structure is missing entirely". The
 * 'one' option for both-empty overlap follows MONAI's ignore_empty=False.
 * AUC is NaN whenever R or its complement is empty (one class only), ECE is
 * NaN only with no voxels. Sensitivity/recall and specificity never fall back to 1.
 */
import type { Vec3, VoxelArray } from '../io/volume.ts';
import { MetricsError } from './metrics_errors.ts';
import { activeAxes, checkLength, cropLabel, labelBox, unionBox, validateGrid, voxelMeasure, type Grid } from './metrics_grid.ts';
import { confusion, overlapMetrics, type Confusion, type EmptyOverlap, type OverlapMetrics } from './metrics_overlap.ts';
import { aucRoc, reliability, splitScores, type CalibrationMode, type Reliability } from './probabilistic.ts';
import { surfaceDistances, surfaceMetrics, type SurfaceMetrics } from './surface.ts';

/** A label map: a bare array (give `size` in the options) or a Volume-like object. */
export type LabelInput = VoxelArray | { data: VoxelArray; size: Vec3; spacing?: Vec3; channels?: number };
export type ProbabilityInput = Float32Array | Float64Array | { data: Float32Array | Float64Array; channels?: number };

export interface EvaluateOptions {
  /** Case identifier for the rows (default ''). */
  case?: string;
  /** Required when pred/ref are bare arrays. */
  size?: Vec3;
  /** mm; defaults to the reference's (then the prediction's) spacing when they are volumes. */
  spacing?: Vec3;
  /** Labels to score; default every non-zero value present in pred or ref, ascending. */
  labels?: number[];
  /** Non-zero = inside; every metric sees only the inside voxels. */
  regionMask?: VoxelArray | { data: VoxelArray };
  /**
   * Per-voxel probabilities, planar channels like a Volume: channel c holds the
   * probability of label c (so channel 0 is background). A single channel is
   * allowed when exactly one label is scored: it is that label's probability.
   */
  probabilities?: ProbabilityInput;
  /** Surface Dice tolerance in mm (default 1). */
  tau?: number;
  /** Dice/IoU/F1 when pred and ref are both empty (default 'nan'). */
  emptyOverlap?: EmptyOverlap;
  /** Skip HD/HD95/ASSD/surface Dice (they cost an EDT per label and side). */
  distances?: boolean;
  /** Equal-width calibration bins over [0, 1] (default 15). */
  calibrationBins?: number;
  calibrationMode?: CalibrationMode;
}

export interface ClassMetrics extends Confusion, OverlapMetrics, SurfaceMetrics {
  label: number;
  tau: number;
  auc?: number;
  ece?: number;
  reliability?: Reliability;
}

export interface CaseEvaluation {
  case: string;
  size: Vec3;
  spacing: Vec3;
  classes: ClassMetrics[];
}

const MAX_AUTO_LABELS = 1000;

function labelData(x: LabelInput, what: string): { data: VoxelArray; size?: Vec3; spacing?: Vec3 } {
  if (ArrayBuffer.isView(x)) return { data: x };
  if (!x || !ArrayBuffer.isView(x.data)) throw new MetricsError('BAD_SHAPE', `${what} must be a typed array or a volume with .data`);
  if ((x.channels ?? 1) !== 1) throw new MetricsError('BAD_SHAPE', `${what} must be a single-channel label map, got ${x.channels} channels`);
  return x;
}

function sameVec(a: Vec3, b: Vec3, tol: number): boolean {
  return a.every((v, k) => Math.abs(v - b[k]!) <= tol * Math.max(1, Math.abs(v)));
}

/** Every non-zero value of the label maps, ascending (inside the region when given). */
export function presentLabels(maps: VoxelArray[], region?: VoxelArray): number[] {
  const seen = new Set<number>();
  for (const m of maps) {
    let last = 0;
    for (let i = 0; i < m.length; i++) {
      const v = m[i]!;
      if (v === 0 || v === last || (region && region[i] === 0)) continue;
      last = v;
      if (Number.isNaN(v)) throw new MetricsError('BAD_VALUE', 'label map contains NaN');
      if (!seen.has(v)) {
        seen.add(v);
        if (seen.size > MAX_AUTO_LABELS)
          throw new MetricsError('BAD_OPTION', `more than ${MAX_AUTO_LABELS} distinct values: this does not look like a label map (pass labels explicitly)`);
      }
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/**
 * HD, HD95, ASSD and surface Dice of one label of two label maps on `grid`
 * (validated by the caller), inside `region`: crops both to the bounding box of
 * their union, so the cost follows the structure, not the image.
 */
export function labelSurfaceMetrics(pred: VoxelArray, ref: VoxelArray, grid: Grid, label: number, tau: number, region?: VoxelArray): SurfaceMetrics {
  const box = unionBox(labelBox(pred, grid.size, label, region), labelBox(ref, grid.size, label, region));
  if (!box) return { hausdorff: NaN, hd95: NaN, assd: NaN, surfaceDice: NaN };
  const cs: Vec3 = [box.hi[0] - box.lo[0], box.hi[1] - box.lo[1], box.hi[2] - box.lo[2]];
  const d = surfaceDistances(
    cropLabel(pred, grid.size, box, label, region),
    cropLabel(ref, grid.size, box, label, region),
    cs,
    grid.spacing,
    activeAxes(grid.size),
  );
  return surfaceMetrics(d, tau);
}

export function evaluateCase(pred: LabelInput, ref: LabelInput, opts: EvaluateOptions = {}): CaseEvaluation {
  const P = labelData(pred, 'prediction');
  const R = labelData(ref, 'reference');
  const size = opts.size ?? R.size ?? P.size;
  if (!size) throw new MetricsError('BAD_SHAPE', 'size [nx, ny, nz] is required when pred and ref are bare arrays');
  if (P.size && !sameVec(P.size, size, 0)) throw new MetricsError('BAD_SHAPE', `prediction size [${P.size.join(', ')}] differs from [${size.join(', ')}]`);
  if (R.size && !sameVec(R.size, size, 0)) throw new MetricsError('BAD_SHAPE', `reference size [${R.size.join(', ')}] differs from [${size.join(', ')}]`);
  if (!opts.spacing && P.spacing && R.spacing && !sameVec(P.spacing, R.spacing, 1e-4)) {
    throw new MetricsError(
      'BAD_SPACING',
      `prediction spacing [${P.spacing.join(', ')}] differs from reference [${R.spacing.join(', ')}]: resample, or pass spacing explicitly`,
    );
  }
  const spacing = opts.spacing ?? R.spacing ?? P.spacing;
  if (!spacing) throw new MetricsError('BAD_SPACING', 'spacing (mm) is required when pred and ref are bare arrays');
  const grid: Grid = { size: [...size], spacing: [...spacing] };
  const n = validateGrid(grid);
  checkLength(P.data, n, 'prediction');
  checkLength(R.data, n, 'reference');
  const region = opts.regionMask ? (ArrayBuffer.isView(opts.regionMask) ? opts.regionMask : opts.regionMask.data) : undefined;
  if (region) checkLength(region, n, 'region mask');
  const tau = opts.tau ?? 1;
  if (!(Number.isFinite(tau) && tau >= 0)) throw new MetricsError('BAD_OPTION', `tau must be a finite number >= 0 (mm), got ${tau}`);
  const labels = opts.labels ?? presentLabels([P.data, R.data], region);
  for (const l of labels) if (!Number.isFinite(l)) throw new MetricsError('BAD_OPTION', `label ${l} is not a finite number`);

  let probs: Float32Array | Float64Array | undefined;
  let channels = 0;
  if (opts.probabilities) {
    probs = ArrayBuffer.isView(opts.probabilities) ? opts.probabilities : opts.probabilities.data;
    if (probs.length % n !== 0 || probs.length === 0)
      throw new MetricsError('BAD_SHAPE', `probabilities have ${probs.length} values, not a multiple of the ${n} voxels`);
    channels = probs.length / n;
    if (channels === 1 && labels.length !== 1)
      throw new MetricsError(
        'BAD_SHAPE',
        `one probability channel but ${labels.length} labels to score: give one channel per label value (channel c = label c)`,
      );
    if (channels > 1) {
      for (const l of labels)
        if (!(Number.isInteger(l) && l >= 0 && l < channels))
          throw new MetricsError('BAD_SHAPE', `label ${l} has no probability channel (${channels} channels; channel c = label c)`);
    }
  }

  const measure = voxelMeasure(grid);
  const classes: ClassMetrics[] = [];
  for (const label of labels) {
    const c = confusion(P.data, R.data, label, region);
    const overlap = overlapMetrics(c, measure, opts.emptyOverlap ?? 'nan');
    const surf: SurfaceMetrics =
      opts.distances === false ? { hausdorff: NaN, hd95: NaN, assd: NaN, surfaceDice: NaN } : labelSurfaceMetrics(P.data, R.data, grid, label, tau, region);
    const m: ClassMetrics = { label, ...c, ...overlap, ...surf, tau };
    if (probs) {
      const split = splitScores(probs, channels === 1 ? 0 : label * n, R.data, label, region);
      m.reliability = reliability(split, opts.calibrationBins ?? 15, opts.calibrationMode ?? 'top-label');
      m.ece = m.reliability.ece;
      m.auc = aucRoc(split);
    }
    classes.push(m);
  }
  return { case: opts.case ?? '', size: grid.size, spacing: grid.spacing, classes };
}
