/**
 * Prediction with a trained model folder: preprocess like training did,
 * sliding window (Gaussian, half-patch steps) with the plan's TTA (mirroring;
 * in 2D also transposing), average the probabilities of every fold present
 * (ensembling), resample back onto the original grid, argmax, the
 * postprocessing cross-validation chose, and write the label map (and, when
 * asked, the class probabilities) in the input's format or a chosen one.
 */
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { Volume } from '../io/volume.ts';
import { readVolume, writeVolume } from '../io/read.ts';
import { MedsegIoError } from '../io/errors.ts';
import { createNetwork } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { loadPlan } from '../plan/store.ts';
import type { Plan } from '../plan/types.ts';
import { preprocessCase, revertPreprocessing } from '../data/preprocess.ts';
import { zyxShape, zyxSpacing } from '../data/axes.ts';
import type { RawCaseData } from '../data/case.ts';
import type { PreprocessedCase } from '../data/types.ts';
import {
  FOLD_FILES,
  listFolds,
  modelFile,
  readCalibration,
  readPostprocessing,
  weightsFile,
  type CheckpointChoice,
  type ModelCalibration,
} from '../plan/model-folder.ts';
import { loadWeightsInto } from '../plan/model-weights.ts';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { slidingWindowLogits, ttaOptions, type NetworkPass, type TtaChoice } from './sliding-window.ts';
import type { TtaLevel } from './tta-levels.ts';

export type { TtaLevel } from './tta-levels.ts';
import { applyPostprocessing } from './postprocess.ts';
import { PredictOptionError, type OutputFormat } from './output-format.ts';
import { writeLabelRtStruct, writeLabelSeg, writeProbabilitySeg, type DicomResultOptions } from './dicom-results.ts';
import { disposeUncertaintyMaps, predictMembers, triageScore, type CaseUncertainty, type UncertaintySource } from './uncertainty.ts';
import { triageMismatch } from './case-score.ts';

export interface LoadedModel {
  dir: string;
  plan: Plan;
  nets: SegmentationNetwork[];
  folds: number[];
  /** Which weights each fold uses. */
  weights: string[];
  /** Classes whose largest connected component is kept (chosen by cross-validation). */
  postprocessing: number[];
  /** Temperature and triage rule fitted on the validation cases (null for a folder trained before calibration existed). */
  calibration: ModelCalibration | null;
}

/**
 * Loads every trained fold of a model folder (or those of `folds`): the
 * weights `checkpoint` names, by default the best ones (else the final ones).
 */
export function loadModel(modelDir: string, o: { folds?: number[]; checkpoint?: CheckpointChoice } = {}): LoadedModel {
  const planPath = modelFile(modelDir, 'plan');
  if (!existsSync(planPath)) throw new MedsegIoError('NOT_FOUND', 'not a medseg model folder (no plan.json)', modelDir);
  const plan = loadPlan(planPath);
  const available = listFolds(modelDir);
  if (o.folds) {
    const missing = o.folds.filter((f) => !available.some((a) => a.fold === f));
    if (missing.length)
      throw new MedsegIoError('NOT_FOUND', `no fold_${missing.join(', fold_')} (have: ${available.map((a) => a.fold).join(', ') || 'none'})`, modelDir);
  }
  const chosen = available.filter(({ fold }) => !o.folds || o.folds.includes(fold)).map((f) => ({ ...f, file: weightsFile(f.dir, o.checkpoint) }));
  const trained = chosen.filter((f): f is typeof f & { file: string } => f.file !== null);
  if (trained.length === 0) throw new MedsegIoError('NOT_FOUND', `no trained fold found (fold_N/${FOLD_FILES.best} or ${FOLD_FILES.final})`, modelDir);
  const postprocessing = readPostprocessing(modelDir).keepLargestComponent;
  const calibration = readCalibration(modelDir);
  const nets: SegmentationNetwork[] = [];
  try {
    for (const { file } of trained) {
      const net = createNetwork(plan.network);
      nets.push(net);
      loadWeightsInto(net, file);
      net.eval();
    }
  } catch (e) {
    for (const n of nets) n.dispose();
    throw e;
  }
  return { dir: modelDir, plan, nets, folds: trained.map((f) => f.fold), weights: trained.map((f) => f.file), postprocessing, calibration };
}

export function disposeModel(m: LoadedModel): void {
  for (const n of m.nets) n.dispose();
}

export interface Prediction {
  /** Label map on the original grid (x-fastest), as a Volume with the input's geometry. */
  labels: Volume;
  /** Class probabilities on the original grid: one channel per class (planar, x-fastest), only when asked. */
  probabilities?: Volume;
  /** Uncertainty maps on the original grid and the case's score, only when asked. */
  uncertainty?: PredictedUncertainty;
  seconds: number;
}

export interface PredictedUncertainty {
  /** Predictive entropy of the members' mean probabilities, divided by log K (0 certain .. 1 uniform). */
  entropy: Volume;
  /** Mutual information between prediction and member (the members' disagreement), divided by log K. */
  mutualInformation: Volume;
  /** The case's uncertainty from every member (all folds' when the ensemble is a source). */
  score: CaseUncertainty;
  /**
   * The number the triage rule thresholds: each fold's triageScore from its
   * own members (as validation scored its cases), averaged over the folds.
   * With one fold it is score.meanEntropy.
   */
  triageScore: number;
  sources: UncertaintySource[];
  /** Whether triageScore reaches the model's triage threshold (null: no rule, or one fitted on other members: see triageNote). */
  flagged: boolean | null;
  /** The triage threshold the score was compared with. */
  threshold: number | null;
  /** Why there is no flag although the model has a triage rule. */
  triageNote?: string;
  /** Temperature the logits were divided by. */
  temperature: number;
}

/** The sliding window's augmentation for a level (true = 'full', false = 'none'), never more than the plan's. */
export function ttaSettings(inference: Plan['inference'], level: boolean | TtaLevel | undefined): (Plan['inference'] & TtaChoice) | { mirror: false } {
  if (level === false || level === 'none') return { mirror: false };
  if (level === 'axis-flips') return { ...inference, transpose: false, mirrorSingleAxes: true };
  if (level === 'mirror') return { ...inference, transpose: false };
  return inference;
}

export interface PredictOptions {
  /** TTA level (default 'full', the plan's); false is 'none': a single pass. */
  tta?: boolean | TtaLevel;
  keepProbabilities?: boolean;
  /** Sliding-window tiles done of the case's total (over every fold and TTA pass of a tile). */
  onTile?: (done: number, total: number) => void;
  /**
   * Predict with members (infer/uncertainty.ts) and return uncertainty maps:
   * the sources (default: the folds and, unless tta is false, the TTA
   * passes), MC-dropout samples and their seed. The probabilities are then
   * the members' mean.
   */
  uncertainty?: { sources?: UncertaintySource[]; mcSamples?: number; seed?: number };
  /**
   * The network pass of each fold, in m.nets' order, instead of the libtorch
   * nets: another engine (deploy/onnx-engine.ts) running the same weights.
   */
  networks?: NetworkPass[];
}

/** A case's channel images preprocessed as training did, with the source geometry to map results back onto. */
export interface PreparedInput {
  case: PreprocessedCase;
  first: Volume;
  geometry: Omit<Volume, 'data'>;
  /** Voxels of the original grid. */
  voxels: number;
}

/**
 * Checks the channel images against the plan and preprocesses them (one file
 * per channel, or one multi-channel file). A label map on the same grid (a
 * region to explain) is carried onto the network's grid as training labels are.
 */
export function prepareInput(plan: Plan, images: Volume[], label: Uint8Array | null = null): PreparedInput {
  // One file per channel (nnU-Net _0000, _0001, ...) or one multi-channel file (an RGB fundus photo).
  const given = images.reduce((a, v) => a + v.channels, 0);
  if (given !== plan.channels.length) {
    throw new MedsegIoError(
      'BAD_DATA',
      `the model expects ${plan.channels.length} channel(s) (${plan.channels.join(', ')}), the input has ${given}`,
      images[0]?.meta.sourcePath,
    );
  }
  const first = images[0]!;
  for (const v of images) {
    if (v.size.some((n, i) => n !== first.size[i]))
      throw new MedsegIoError('BAD_GEOMETRY', `channel images differ in size (${v.size} vs ${first.size})`, v.meta.sourcePath);
  }
  const n = first.size[0] * first.size[1] * first.size[2];
  const channels = given;
  const image = new Float32Array(channels * n);
  let offset = 0;
  for (const v of images) {
    image.set(v.data as ArrayLike<number>, offset);
    offset += v.data.length;
  }
  const { data: _d, ...geometry } = first;
  const raw: RawCaseData = {
    id: 'input',
    image,
    label,
    channels,
    shape: zyxShape(first),
    spacing: zyxSpacing(first),
    geometry: { ...geometry, channels },
  };
  return { case: preprocessCase(raw, plan), first, geometry, voxels: n };
}

/** Segments one case given its channel images (same grid). */
export function predictVolumes(m: LoadedModel, images: Volume[], o: PredictOptions = {}): Prediction {
  const t0 = performance.now();
  const plan = m.plan;
  const { case: c, first, geometry, voxels: n } = prepareInput(plan, images);
  const K = plan.network.numClasses;
  const spatial = plan.dims === '2d' ? c.shape.slice(1) : c.shape;
  const inference = plan.inference;
  const tta = ttaSettings(inference, o.tta);
  const temperature = m.calibration?.temperature ?? 1;
  let uncertainty: PredictedUncertainty | undefined;
  const probs = torch.tidy(() => {
    const img = torch.tensor(c.data, [c.channels, ...spatial]);
    if (o.uncertainty) {
      if (o.networks) throw new Error('predictVolumes: uncertainty members run on the libtorch nets; do not pass other network passes with it');
      const t = ttaOptions(tta, spatial.length);
      const sources = o.uncertainty.sources ?? (tta.mirror || t.transposeAxes ? ['ensemble', 'tta'] : ['ensemble']);
      const foldScores: number[] = [];
      let foldMembers = 0;
      const maps = predictMembers(m.nets, img, {
        sources,
        mirrorAxes: t.mirrorAxes ?? [],
        mirrorSingleAxes: t.mirrorSingleAxes,
        transposeAxes: t.transposeAxes,
        mcSamples: o.uncertainty.mcSamples,
        seed: o.uncertainty.seed,
        temperature,
        window: { patchSize: plan.patchSize, stepFraction: inference.stepFraction, precision: inference.precision },
        onMember: o.onTile,
        perNetwork: (own) => {
          foldScores.push(triageScore(own, K).meanEntropy);
          foldMembers = own.members;
        },
      });
      try {
        const logK = Math.log(Math.max(2, K));
        const score = triageScore(maps, K);
        const foldScore = foldScores.reduce((a, b) => a + b, 0) / foldScores.length;
        const two = torch.stack([maps.predictiveEntropy, maps.mutualInformation], 0).div(logK).contiguous().toTypedArray() as Float32Array;
        const back = revertPreprocessing({ maps: two, channels: 2 }, c.shape, c.properties, plan) as Float32Array;
        const map = (k: number, name: string): Volume => ({
          ...geometry,
          channels: 1,
          data: back.slice(k * n, (k + 1) * n),
          meta: { ...first.meta, modality: 'OT', extra: { source: first.meta.sourcePath, map: name } },
        });
        const rule = m.calibration?.triage ? m.calibration : null;
        const note = rule ? triageMismatch(rule, sources, foldMembers) : null;
        const threshold = rule && !note ? rule.triage!.threshold : null;
        uncertainty = {
          entropy: map(0, 'normalised predictive entropy'),
          mutualInformation: map(1, 'normalised mutual information'),
          score,
          triageScore: foldScore,
          sources,
          flagged: threshold === null ? null : foldScore >= threshold,
          threshold,
          temperature,
          ...(note ? { triageNote: note } : {}),
        };
        return maps.meanProbabilities.contiguous().toTypedArray() as Float32Array;
      } finally {
        disposeUncertaintyMaps(maps);
      }
    }
    let sum: torch.Tensor | null = null;
    const passes: NetworkPass[] = o.networks ?? m.nets;
    if (passes.length !== m.nets.length) throw new Error(`predictVolumes: ${passes.length} network passes for ${m.nets.length} folds`);
    passes.forEach((net, k) => {
      const logits = slidingWindowLogits(net, img, {
        patchSize: plan.patchSize,
        stepFraction: inference.stepFraction,
        precision: inference.precision,
        ...ttaOptions(tta, spatial.length),
        onProgress: o.onTile ? (done, total) => o.onTile!(k * total + done, m.nets.length * total) : undefined,
      });
      const p = torch.F.softmax(temperature === 1 ? logits : logits.div(temperature), 0);
      sum = sum ? sum.add(p) : p;
    });
    return sum!.div(m.nets.length).contiguous().toTypedArray() as Float32Array;
  });
  const original = revertPreprocessing({ probabilities: probs, numClasses: K }, c.shape, c.properties, plan) as Float32Array;
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = original[i]!;
    for (let k = 1; k < K; k++) {
      const v = original[k * n + i]!;
      if (v > bv) {
        bv = v;
        best = k;
      }
    }
    labels[i] = best;
  }
  applyPostprocessing(labels, first.size, m.postprocessing);
  const meta = { ...first.meta, extra: { source: first.meta.sourcePath } };
  return {
    labels: { ...geometry, channels: 1, data: labels, meta: { ...meta, modality: 'SEG' } },
    probabilities: o.keepProbabilities ? { ...geometry, channels: K, data: original, meta: { ...meta, modality: 'OT' } } : undefined,
    ...(uncertainty ? { uncertainty } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** One case to predict, as listed from the user's input (pipeline/predict-folder.ts). */
export interface InputCase {
  /** File name stem of the outputs. */
  id: string;
  /** Folder of the outputs below the output folder ('' = the output folder itself). */
  subdir: string;
  /** An image file (for several channels: the _0000 file) or DICOM files of one series. */
  source: { kind: 'image'; path: string } | { kind: 'dicom'; files: string[]; seriesInstanceUID: string; where: string };
}

/** Reads one case: one image file, nnU-Net style _0000.._000N files, or one DICOM series (a path: an image file or a folder of one series). */
export async function readInputCase(c: InputCase | string, channels: number): Promise<Volume[]> {
  const s = typeof c === 'string' ? { kind: 'image' as const, path: c } : c.source;
  if (s.kind === 'dicom') {
    const { readDicomSeries } = await import('../io/dicom/index.ts');
    return [await readDicomSeries(s.files, { seriesInstanceUID: s.seriesInstanceUID })];
  }
  const path = s.path;
  if (channels === 1 || !/_0000\.[a-z.]+$/i.test(path)) return [await readVolume(path)];
  const vols: Volume[] = [];
  for (let k = 0; k < channels; k++) vols.push(await readVolume(path.replace(/_0000(\.[a-z.]+)$/i, `_${String(k).padStart(4, '0')}$1`)));
  return vols;
}

const ENDING: Record<OutputFormat, string> = { nifti: '.nii.gz', nrrd: '.nrrd', png: '.png', 'dicom-seg': '.seg.dcm', rtstruct: '.rtstruct.dcm' };

/** Checks a case against the output format before it is predicted. */
export function checkOutputFormat(format: OutputFormat, c: InputCase, source: Volume): void {
  if ((format === 'dicom-seg' || format === 'rtstruct') && (c.source.kind !== 'dicom' || !source.meta.sopInstanceUIDs?.length)) {
    const what = format === 'rtstruct' ? 'an RTSTRUCT' : 'a DICOM SEG';
    throw new PredictOptionError(
      `--format ${format} needs a DICOM series as input (${what} references its source slices); ${c.id} is not one: use nifti or nrrd`,
    );
  }
  if (format === 'png' && source.size[2] !== 1) {
    throw new PredictOptionError(`--format png holds one 2D slice; ${c.id} has ${source.size[2]} slices: use nifti or nrrd`);
  }
}

/** Writes a prediction (and its probabilities, when present) under outDir; returns the paths written. */
export async function writePrediction(
  outDir: string,
  c: InputCase,
  format: OutputFormat,
  source: Volume,
  pred: Prediction,
  plan: Plan,
  results: DicomResultOptions = {},
): Promise<WrittenPrediction> {
  const dir = join(outDir, c.subdir);
  // A NIfTI input keeps its .nii or .nii.gz ending.
  const ending = format === 'nifti' && c.source.kind === 'image' && /\.nii$/i.test(c.source.path) ? '.nii' : ENDING[format];
  const labels = join(dir, `${c.id}${ending}`);
  checkOutputFormat(format, c, source);
  if (format === 'dicom-seg') await writeLabelSeg(labels, pred.labels, source, plan, results);
  else if (format === 'rtstruct') await writeLabelRtStruct(labels, pred.labels, source, plan, results);
  else await writeVolume(labels, pred.labels);
  const written: WrittenPrediction = { labels };
  // Float maps: NRRD beside an NRRD, NIfTI otherwise (PNG and RTSTRUCT hold no float channels); beside a DICOM SEG the probabilities are a FRACTIONAL SEG.
  const floatEnding = format === 'nrrd' ? '.nrrd' : '.nii.gz';
  if (pred.probabilities && format === 'dicom-seg') {
    written.probabilities = join(dir, `${c.id}_probabilities.seg.dcm`);
    await writeProbabilitySeg(written.probabilities, pred.probabilities, source, plan, results);
  } else if (pred.probabilities) {
    written.probabilities = join(dir, `${c.id}_probabilities${floatEnding}`);
    await writeVolume(written.probabilities, pred.probabilities);
  }
  const u = pred.uncertainty;
  if (u) {
    written.entropy = join(dir, `${c.id}_entropy${floatEnding}`);
    written.mutualInformation = join(dir, `${c.id}_mutual_information${floatEnding}`);
    written.uncertainty = join(dir, `${c.id}_uncertainty.json`);
    await writeVolume(written.entropy, u.entropy);
    await writeVolume(written.mutualInformation, u.mutualInformation);
    const report = {
      case: c.id,
      input: c.source.kind === 'image' ? c.source.path : c.source.where,
      score: u.score.meanEntropy,
      scoreName: 'mean normalised predictive entropy over the prediction and its uncertain rim',
      triageScore: u.triageScore,
      triageScoreName: "the score of each fold's own members, averaged over the folds (what the review threshold applies to)",
      meanMutualInformation: u.score.meanMutualInformation,
      regionVoxels: u.score.regionVoxels,
      members: u.score.members,
      sources: u.sources,
      temperature: u.temperature,
      flagged: u.flagged,
      threshold: u.threshold,
      ...(u.triageNote ? { triageNote: u.triageNote } : {}),
      maps: { entropy: written.entropy, mutualInformation: written.mutualInformation },
    };
    await writeFileAtomic(written.uncertainty, `${JSON.stringify(report, null, 2)}\n`);
  }
  return written;
}

/** The files writePrediction wrote for a case. */
export interface WrittenPrediction {
  labels: string;
  probabilities?: string;
  /** Normalised predictive entropy map, mutual information map and the case's uncertainty JSON (with --uncertainty). */
  entropy?: string;
  mutualInformation?: string;
  uncertainty?: string;
}
