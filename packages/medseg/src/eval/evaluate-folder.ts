/**
 * Evaluate a folder of predictions against a folder of references: pair files
 * by case id, check that each pair shares a grid, score every case with
 * evaluateCase (reference spacing) and summarise per label and metric with
 * bootstrap CIs (statistics/summary.ts).
 *
 * Pairing. The case id of a file is its name without the image extension
 * (.nii.gz, .nii, .nrrd, .nhdr, .png, .gif, .tif, ...). A reference named
 * `<id>_0000` (nnU-Net's channel suffix) pairs with prediction `<id>` when no
 * prediction is named `<id>_0000`. For other layouts give a regular
 * expression whose first capture group is the case id, e.g. DRIVE's
 * `01_manual1.gif` / `01_manual2.gif` / `01_test_mask.gif` pair with
 * /^(\d+)_/. Files of other types (plans.json, CSV, ...) are ignored.
 *
 * Missing predictions (Metrics Reloaded: a missing output is a failure, never
 * a skipped case). A reference without a prediction is scored against an
 * empty prediction on the reference grid and its rows get status
 * 'missing_prediction'. By the conventions of metrics.ts that gives, for a
 * label present in the reference: Dice/IoU 0, sensitivity 0, precision NaN,
 * HD/HD95/ASSD +Infinity, surface Dice 0; for a label absent from it too:
 * NaN. The summary counts these rows, and the statistics report the +Inf/NaN
 * values as excluded rather than silently dropping the case. Predictions
 * without a reference cannot be scored and are listed as unmatched.
 *
 * Labels 'auto' (the default) is the union of the non-zero values of every
 * reference and prediction (a first pass over the files), so every case gets a
 * row for every label and the per-label statistics cover the same cases. Pass
 * labels explicitly to skip that pass.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { fsError } from '../io/limits.ts';
import { formatFromName, readVolume } from '../io/read.ts';
import type { Vec3, Volume, VoxelArray } from '../io/volume.ts';
import { evaluateCase, presentLabels, type CaseEvaluation } from './metrics.ts';
import { toRows } from './metrics_rows.ts';
import { metricColumns, type MetricRow } from './statistics/rows.ts';
import { aggregate, type AggregateRow, type BootstrapOptions } from './statistics/summary.ts';

/** A regex whose first capture group (else the whole match) is the case id; non-matching files are ignored. */
export type PairingPattern = RegExp;

export interface Pairing {
  predictions?: PairingPattern;
  references?: PairingPattern;
  regionMasks?: PairingPattern;
  probabilities?: PairingPattern;
}

export interface GeometryTolerance {
  /** Relative tolerance of spacing (default 1e-4). */
  spacing: number;
  /** Absolute tolerance of origin in mm (default 1e-3), also applied relative to |origin| when larger. */
  origin: number;
  /** Absolute tolerance of direction cosines (default 1e-4). */
  direction: number;
}

export interface EvaluateFolderOptions {
  predictions: string;
  references: string;
  /** Labels to score (default 'auto': every non-zero value found in the files). */
  labels?: number[] | 'auto';
  /** Folder of region masks (non-zero = inside), paired by case id like the references. */
  regionMasks?: string;
  /** Folder of probability maps (channel c = label c), paired by case id. */
  probabilities?: string;
  /** Surface Dice tolerance in mm (default 1). */
  tau?: number;
  /** One pattern for every folder, or one per folder (default: file stem). */
  pairing?: PairingPattern | Pairing;
  /** Map every non-zero value to 1 in predictions and references (e.g. 0/1 vs 0/255 masks). */
  binarize?: boolean;
  /** Model name carried in the rows (default: the predictions folder's name). */
  model?: string;
  geometryTolerance?: Partial<GeometryTolerance>;
  /** Skip HD/HD95/ASSD/surface Dice. */
  distances?: boolean;
  bootstrap?: BootstrapOptions;
  /** Called before each case is scored (progress on stderr, say). */
  onCase?: (info: { index: number; total: number; case: string }) => void;
}

export type CaseStatus = 'ok' | 'missing_prediction';

export interface FolderCase {
  case: string;
  status: CaseStatus;
  prediction?: string;
  reference: string;
  regionMask?: string;
  probabilities?: string;
}

export interface FolderEvaluation {
  model: string;
  labels: number[];
  tau: number;
  cases: FolderCase[];
  /** One row per case and label: every scalar metric plus `model` and `status`. */
  rows: MetricRow[];
  /** Mean, median, CI, ... per label and metric over all cases (missing predictions included). */
  summary: AggregateRow[];
  missingPredictions: string[];
  /** Prediction files with no reference: not scored. */
  unmatchedPredictions: string[];
  /** Per-case evaluations (reliability curves live here when probabilities were given). */
  evaluations: CaseEvaluation[];
}

/** Scalar metrics worth summarising; confusion counts and tau stay in the per-case rows only. */
export const SUMMARY_METRICS = [
  'dice',
  'iou',
  'sensitivity',
  'specificity',
  'precision',
  'accuracy',
  'hausdorff',
  'hd95',
  'assd',
  'surfaceDice',
  'absVolumeDiff',
  'relVolumeDiff',
  'auc',
  'ece',
];

const EXTENSIONS = ['.nii.gz', '.nii', '.nrrd', '.nhdr', '.png', '.gif', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp', '.dcm'];

/** File name without its image extension (.nii.gz counts as one extension). */
export function caseStem(file: string): string {
  const name = basename(file);
  const lower = name.toLowerCase();
  for (const ext of EXTENSIONS) if (lower.endsWith(ext)) return name.slice(0, name.length - ext.length);
  return name;
}

function caseIdOf(file: string, pattern?: PairingPattern): string | undefined {
  if (!pattern) return caseStem(file);
  const m = pattern.exec(basename(file));
  if (!m) return undefined;
  return m[1] ?? m[0];
}

/** Readable image files of a folder, keyed by case id. */
export async function listCases(dir: string, pattern?: PairingPattern, what = 'folder'): Promise<Map<string, string>> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const err = fsError(e, dir);
    if (err.code === 'NOT_FOUND') throw new MedsegIoError('NOT_FOUND', `${what} folder does not exist`, dir);
    if ((e as { code?: string }).code === 'ENOTDIR') throw new MedsegIoError('UNSUPPORTED', `${what} must be a folder of image files, not a file`, dir);
    throw err;
  }
  const out = new Map<string, string>();
  for (const ent of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!ent.isFile() || ent.name.startsWith('.') || /\.tmp/.test(ent.name) || !formatFromName(ent.name)) continue;
    const id = caseIdOf(ent.name, pattern);
    if (id === undefined || id === '') continue;
    const path = join(dir, ent.name);
    const prev = out.get(id);
    if (prev) throw new MedsegIoError('BAD_DATA', `two files map to case "${id}": ${prev} and ${path}; remove one or give a pairing pattern`, dir);
    out.set(id, path);
  }
  return out;
}

/** The file of `byId` for case id, tolerating nnU-Net's `_0000` channel suffix on either side. */
function lookup(byId: Map<string, string>, id: string): string | undefined {
  return byId.get(id) ?? byId.get(`${id}_0000`) ?? (id.endsWith('_0000') ? byId.get(id.slice(0, -5)) : undefined);
}

function patterns(p: EvaluateFolderOptions['pairing']): Pairing {
  if (!p) return {};
  if (p instanceof RegExp) return { predictions: p, references: p, regionMasks: p, probabilities: p };
  return p;
}

function close(a: readonly number[], b: readonly number[], abs: number, rel: number): boolean {
  return a.every((v, k) => Math.abs(v - b[k]!) <= Math.max(abs, rel * Math.max(Math.abs(v), Math.abs(b[k]!))));
}

const fmtVec = (v: readonly number[]) => `[${v.map((x) => +x.toPrecision(6)).join(', ')}]`;

/**
 * Throw a MedsegIoError naming both files unless `other` lies on `ref`'s grid.
 * Sizes must match exactly; spacing, origin and direction within tolerance.
 */
export function checkSameGrid(ref: Volume, refPath: string, other: Volume, otherPath: string, tol: GeometryTolerance, what = 'prediction'): void {
  const where = `${what} ${otherPath} vs reference ${refPath}`;
  const fail = (msg: string) => {
    throw new MedsegIoError('BAD_GEOMETRY', `${where}: ${msg}`, otherPath);
  };
  if (!close(ref.size, other.size, 0, 0))
    fail(`size ${fmtVec(other.size)} differs from the reference's ${fmtVec(ref.size)}; predictions must be on the reference grid (resample them first)`);
  if (!close(ref.spacing, other.spacing, 0, tol.spacing))
    fail(`spacing ${fmtVec(other.spacing)} mm differs from the reference's ${fmtVec(ref.spacing)} mm; resample to the reference grid`);
  if (!close(ref.origin, other.origin, tol.origin, 1e-6))
    fail(`origin ${fmtVec(other.origin)} mm differs from the reference's ${fmtVec(ref.origin)} mm; the images are not aligned`);
  if (!close(ref.direction, other.direction, tol.direction, 0))
    fail(`direction ${fmtVec(other.direction)} differs from the reference's ${fmtVec(ref.direction)}; reorient to the reference`);
}

function labelMap(v: Volume, path: string, what: string, binarize: boolean): VoxelArray {
  if (v.channels !== 1)
    throw new MedsegIoError('BAD_DATA', `${what} has ${v.channels} channels; a label map has one (an RGB image? save masks as single-channel)`, path);
  if (!binarize) return v.data;
  const out = new Uint8Array(v.data.length);
  for (let i = 0; i < out.length; i++) out[i] = v.data[i] !== 0 ? 1 : 0;
  return out;
}

interface Pair {
  id: string;
  reference: string;
  prediction?: string;
}

export async function evaluateFolder(opts: EvaluateFolderOptions): Promise<FolderEvaluation> {
  const pat = patterns(opts.pairing);
  const tol: GeometryTolerance = { spacing: 1e-4, origin: 1e-3, direction: 1e-4, ...opts.geometryTolerance };
  const binarize = opts.binarize ?? false;
  const tau = opts.tau ?? 1;
  const refs = await listCases(opts.references, pat.references, 'references');
  const preds = await listCases(opts.predictions, pat.predictions, 'predictions');
  if (refs.size === 0)
    throw new MedsegIoError(
      'NOT_FOUND',
      'no reference images found (expected .nii.gz, .nrrd, .png, ... files; check the folder or the pairing pattern)',
      opts.references,
    );
  const regions = opts.regionMasks ? await listCases(opts.regionMasks, pat.regionMasks, 'region masks') : undefined;
  const probs = opts.probabilities ? await listCases(opts.probabilities, pat.probabilities, 'probabilities') : undefined;

  const pairs: Pair[] = [];
  const usedPreds = new Set<string>();
  for (const [id, reference] of refs) {
    const prediction = lookup(preds, id);
    if (prediction) usedPreds.add(prediction);
    // report the id without a channel suffix when the prediction drops it
    const caseId = id.endsWith('_0000') && !preds.has(id) ? id.slice(0, -5) : id;
    pairs.push({ id: caseId, reference, prediction });
  }
  const unmatchedPredictions = [...preds.values()].filter((p) => !usedPreds.has(p));
  if (pairs.every((p) => !p.prediction)) {
    throw new MedsegIoError(
      'NOT_FOUND',
      `none of the ${refs.size} references has a prediction (e.g. reference ${pairs[0]!.reference}); check the folders or the pairing pattern`,
      opts.predictions,
    );
  }

  let labels: number[];
  if (opts.labels === undefined || opts.labels === 'auto') {
    const seen = new Set<number>();
    for (const p of pairs) {
      for (const [path, what] of [
        [p.reference, 'reference'],
        [p.prediction, 'prediction'],
      ] as const) {
        if (!path) continue;
        for (const l of presentLabels([labelMap(await readVolume(path), path, what, binarize)])) seen.add(l);
      }
    }
    labels = [...seen].sort((a, b) => a - b);
    if (labels.length === 0) labels = [1]; // all empty: still one row per case, so the cases are counted
  } else {
    labels = [...opts.labels];
  }

  const model = opts.model ?? (basename(opts.predictions.replace(/[\\/]+$/, '')) || 'model');
  const cases: FolderCase[] = [];
  const evaluations: CaseEvaluation[] = [];
  const rows: MetricRow[] = [];
  for (const [index, p] of pairs.entries()) {
    opts.onCase?.({ index, total: pairs.length, case: p.id });
    const refVol = await readVolume(p.reference);
    const refData = labelMap(refVol, p.reference, 'reference', binarize);
    let predData: VoxelArray;
    if (p.prediction) {
      const predVol = await readVolume(p.prediction);
      checkSameGrid(refVol, p.reference, predVol, p.prediction, tol);
      predData = labelMap(predVol, p.prediction, 'prediction', binarize);
    } else {
      predData = new Uint8Array(refData.length);
    }
    const fc: FolderCase = { case: p.id, status: p.prediction ? 'ok' : 'missing_prediction', prediction: p.prediction, reference: p.reference };
    let regionMask: VoxelArray | undefined;
    if (regions) {
      const path = lookup(regions, p.id);
      if (!path) throw new MedsegIoError('NOT_FOUND', `no region mask for case "${p.id}" (reference ${p.reference})`, opts.regionMasks);
      const v = await readVolume(path);
      checkSameGrid(refVol, p.reference, v, path, tol, 'region mask');
      if (v.channels !== 1) throw new MedsegIoError('BAD_DATA', `region mask has ${v.channels} channels; expected one`, path);
      regionMask = v.data;
      fc.regionMask = path;
    }
    let probabilities: Float32Array | Float64Array | undefined;
    if (probs && p.prediction) {
      const path = lookup(probs, p.id);
      if (!path) throw new MedsegIoError('NOT_FOUND', `no probability map for case "${p.id}" (prediction ${p.prediction})`, opts.probabilities);
      const v = await readVolume(path);
      checkSameGrid(refVol, p.reference, v, path, tol, 'probability map');
      probabilities = v.data instanceof Float32Array || v.data instanceof Float64Array ? v.data : Float32Array.from(v.data as ArrayLike<number>);
      fc.probabilities = path;
    }
    const spacing: Vec3 = refVol.spacing;
    const ev = evaluateCase(predData, refData, {
      case: p.id,
      size: refVol.size,
      spacing,
      labels,
      regionMask,
      probabilities,
      tau,
      distances: opts.distances,
    });
    evaluations.push(ev);
    cases.push(fc);
    for (const r of toRows(ev)) rows.push({ model, case: r.case, label: r.label, status: fc.status, ...withoutIds(r) });
  }
  const present = metricColumns(rows);
  const summary = aggregate(rows, { metrics: SUMMARY_METRICS.filter((m) => present.includes(m)), bootstrap: opts.bootstrap });
  return {
    model,
    labels,
    tau,
    cases,
    rows,
    summary,
    missingPredictions: cases.filter((c) => c.status === 'missing_prediction').map((c) => c.case),
    unmatchedPredictions,
    evaluations,
  };
}

function withoutIds(r: Record<string, number | string>): Record<string, number | string> {
  const { case: _c, label: _l, ...rest } = r;
  return rest;
}
