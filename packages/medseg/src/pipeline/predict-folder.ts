/**
 * Predicts every case under an input path, case by case, with progress:
 *
 * - an image file, or a folder (and its subfolders) of image files: one case
 *   per file (channel 0 of nnU-Net's _0000.._000N files); outputs keep the
 *   subfolder they came from;
 * - DICOM files anywhere in the folder: one case per image series (SEG, SR,
 *   RTSTRUCT and other non-image series are skipped). A folder holding
 *   several series predicts each of them, its outputs named
 *   <folder>_<SeriesInstanceUID>; `series` picks one SeriesInstanceUID.
 *
 * A case that cannot be read or predicted (a MedsegIoError) is recorded and
 * the others go on; the run then ends in a PredictionFailures error listing
 * them. An option the input cannot honour (PredictOptionError) stops the run.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { MedsegIoError, type IoErrorCode } from '../io/errors.ts';
import { requireDevice, type Device } from '../infer/device.ts';
import { defaultOutputFormat, PredictOptionError, type OutputFormat } from '../infer/output-format.ts';
import {
  checkOutputFormat,
  disposeModel,
  loadModel,
  predictVolumes,
  readInputCase,
  writePrediction,
  type InputCase,
  type PredictOptions,
  type TtaLevel,
} from '../infer/predict.ts';
import type { NetworkPass } from '../infer/sliding-window.ts';
import type { CheckpointChoice } from '../plan/model-folder.ts';
import { createProgress, type ProgressReporter } from '../util/progress.ts';
import { supportsMcDropout } from '../infer/uncertainty.ts';
import { readSegmentCodes } from '../io/dicom/segment-codes-file.ts';
import { newDeidentifyState, type DeidentifyOptions } from '../io/dicom/deidentify.ts';

const IMAGE = /\.(nii|nii\.gz|nrrd|nhdr|png|tif|tiff|jpe?g|bmp|gif)$/i;
const IMAGE_ENDING = /(_0000)?\.(nii|nii\.gz|nrrd|nhdr|png|tif|tiff|jpe?g|bmp|gif)$/i;
const MAX_DEPTH = 8;

function imageCase(root: string, file: string): InputCase {
  const rel = relative(root, dirname(file));
  return { id: basename(file).replace(IMAGE_ENDING, ''), subdir: rel, source: { kind: 'image', path: file } };
}

/** Names DICOM files go by: no extension, .dcm/.dicom/.ima, or a UID-like numeric ending. */
const DICOM_NAME = /^[^.]+$|\.(dcm|dicom|ima|\d+)$/i;

/** Image files under dir (other channels than _0000 left out), and whether files that may be DICOM are there too. */
function walk(dir: string, depth: number, images: string[]): boolean {
  let others = false;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (depth < MAX_DEPTH) others = walk(p, depth + 1, images) || others;
    } else if (IMAGE.test(e.name)) {
      if (!/_000[1-9]\.[a-z.]+$/i.test(e.name)) images.push(p);
    } else if (e.isFile() && DICOM_NAME.test(e.name)) others = true;
  }
  return others;
}

/** The deepest folder holding every file. */
function commonFolder(files: string[]): string {
  let d = dirname(files[0]!);
  while (!files.every((f) => f.startsWith(d + sep))) d = dirname(d);
  return d;
}

async function dicomCases(root: string): Promise<InputCase[]> {
  const { listDicomSeries } = await import('../io/dicom/index.ts');
  const { NON_IMAGE } = await import('../io/dicom/series.ts');
  const series = (await listDicomSeries(root)).filter((s) => !NON_IMAGE.has(s.modality));
  const folders = series.map((s) => commonFolder(s.files));
  return series.map((s, i) => {
    const folder = folders[i]!;
    const shared = folders.filter((f) => f === folder).length > 1;
    const name = basename(folder);
    return {
      id: shared ? `${name}_${s.seriesInstanceUID}` : name,
      subdir: folder === root ? '' : relative(root, dirname(folder)),
      source: { kind: 'dicom', files: s.files, seriesInstanceUID: s.seriesInstanceUID, where: folder },
    };
  });
}

/**
 * The cases under `input` (see the module comment). With `series`, only that
 * DICOM series (NOT_FOUND, listing the series there are, when it is absent).
 */
export async function listInputs(input: string, o: { series?: string } = {}): Promise<InputCase[]> {
  const p = resolve(input);
  if (!existsSync(p)) throw new MedsegIoError('NOT_FOUND', 'input does not exist', p);
  let cases: InputCase[];
  if (!statSync(p).isDirectory()) {
    cases = IMAGE.test(p) ? [imageCase(dirname(p), p)] : await dicomCases(p);
    // A single DICOM file is named after itself rather than its folder.
    if (cases.length === 1 && cases[0]!.source.kind === 'dicom') cases[0] = { ...cases[0]!, id: basename(p).replace(/\.dcm$/i, ''), subdir: '' };
  } else {
    const images: string[] = [];
    const others = walk(p, 0, images);
    cases = [...images.map((f) => imageCase(p, f)), ...(others || o.series ? await dicomCases(p) : [])];
  }
  if (o.series !== undefined) {
    const dicom = cases.filter((c) => c.source.kind === 'dicom');
    const picked = dicom
      .filter((c) => c.source.kind === 'dicom' && c.source.seriesInstanceUID === o.series)
      .map((c) => ({ ...c, id: c.id.replace(`_${o.series}`, '') }));
    if (picked.length === 0) {
      const have = dicom.map((c) => (c.source.kind === 'dicom' ? c.source.seriesInstanceUID : '')).join(', ');
      throw new MedsegIoError('NOT_FOUND', `no DICOM series ${o.series} here (${have ? `series found: ${have}` : 'no DICOM image series found'})`, p);
    }
    return picked;
  }
  if (cases.length === 0) throw new MedsegIoError('NOT_FOUND', 'no images or DICOM image series found', p);
  return cases;
}

export interface CaseFailure {
  input: string;
  code: IoErrorCode;
  message: string;
}

/** Some cases could not be predicted; the others were written. */
export class PredictionFailures extends MedsegIoError {
  constructor(
    readonly failures: CaseFailure[],
    readonly total: number,
    readonly outputs: PredictedCase[],
    where: string,
  ) {
    super(
      failures.every((f) => f.code === failures[0]!.code) ? failures[0]!.code : 'BAD_DATA',
      `${failures.length} of ${total} case(s) could not be predicted (the other ${outputs.length} were written):\n${failures.map((f) => `  - ${f.message}`).join('\n')}`,
      where,
    );
  }
}

export interface PredictedCase {
  input: string;
  output: string;
  probabilities?: string;
  /** With uncertainty: the case's uncertainty JSON, and whether the model's triage rule flags it for review (null: no rule). */
  uncertainty?: string;
  flagged?: boolean | null;
  seconds: number;
}

export interface PredictPathOptions {
  model: string;
  input: string;
  out: string;
  /** TTA level (infer/predict.ts); false is 'none'. */
  tta?: boolean | TtaLevel;
  folds?: number[];
  checkpoint?: CheckpointChoice;
  /** Default: each case's own format (DICOM -> DICOM SEG). */
  format?: OutputFormat;
  /** Also write per-class probability maps beside each label map (a FRACTIONAL SEG beside a DICOM SEG). */
  saveProbabilities?: boolean;
  /** A JSON file of segment codes for DICOM SEG / RTSTRUCT output (io/dicom/segment-codes.ts says its layout). */
  segmentCodes?: string;
  /** Predict with members and write entropy and mutual-information maps and a per-case uncertainty JSON (infer/uncertainty.ts). */
  uncertainty?: PredictOptions['uncertainty'];
  /** The DICOM series to predict where the input holds several. */
  series?: string;
  device?: Device;
  /**
   * The engine of the network passes: libtorch (default), onnxruntime (each fold exported to ONNX in memory; CPU),
   * or onnxruntime on a static int8 model (each fold quantized in memory with `calibration`, or the `onnx` file).
   */
  engine?: 'torch' | 'onnx' | 'onnx-int8';
  /** An ONNX file `medseg export` or `medseg compress` wrote, run as the network of the one fold it was made from (engine onnx or onnx-int8). */
  onnx?: string;
  /** Engine onnx-int8 without a file: the dataset whose training cases calibrate the activations (as `medseg compress --int8`). */
  calibration?: { dataset: string; cases?: number };
  /** Per case: tiles done of the case's total, with an ETA. */
  progress?: ProgressReporter;
  /**
   * De-identify the DICOM SEG / RTSTRUCT results (PS3.15 Basic Profile, io/dicom/deidentify.ts), one state for the
   * whole run; with `uidSecret` the remapped UIDs equal those `medseg deidentify` gives the source with that secret.
   */
  deidentify?: DeidentifyOptions;
}

/** An ONNX file with medseg's metadata: its bytes and the fold, architecture and labels it was exported with. */
async function readOnnxFile(path: string, int8: boolean): Promise<{ bytes: Uint8Array; fold: number; architecture: string; labels: Record<string, string> }> {
  if (!existsSync(path) || statSync(path).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'no such ONNX file', path);
  const bytes = readFileSync(path);
  const { readOnnxMetadata } = await import('../deploy/onnx-builder.ts');
  let meta: Record<string, string>;
  try {
    meta = readOnnxMetadata(bytes);
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `not an ONNX model (${(e as Error).message})`, path);
  }
  if (!meta.medseg) throw new MedsegIoError('BAD_DATA', 'no medseg metadata: give a model `medseg export` or `medseg compress` wrote', path);
  if (int8 && !meta['medseg.quantization'] && !meta['medseg.dynamic-quantization'])
    throw new PredictOptionError(`${path} is not quantized: run it with --engine onnx, or write one with medseg compress --int8`);
  const info = JSON.parse(meta.medseg) as { fold: number; architecture: string; labels: Record<string, string> };
  return { bytes, fold: info.fold, architecture: info.architecture, labels: info.labels };
}

function caseInput(c: InputCase): string {
  return c.source.kind === 'image' ? c.source.path : c.source.where;
}

export async function predictPath(o: PredictPathOptions): Promise<{ outputs: PredictedCase[] }> {
  requireDevice(o.device ?? 'cpu');
  const onnxEngine = o.engine === 'onnx' || o.engine === 'onnx-int8';
  if (onnxEngine && (o.device ?? 'cpu') !== 'cpu') throw new PredictOptionError(`--engine ${o.engine} runs on the CPU: drop --device or use --engine torch`);
  if (onnxEngine && o.uncertainty)
    throw new PredictOptionError(`--uncertainty runs on the libtorch engine (MC dropout needs the module): drop --engine ${o.engine}`);
  if (o.onnx && !onnxEngine) throw new PredictOptionError('--onnx <file> is the network of --engine onnx or onnx-int8');
  if (o.calibration && o.engine !== 'onnx-int8') throw new PredictOptionError('--calibration goes with --engine onnx-int8');
  if (o.engine === 'onnx-int8' && !o.onnx === !o.calibration)
    throw new PredictOptionError(
      '--engine onnx-int8 needs either --calibration <dataset> (each fold quantized in memory) or --onnx <file> (a model written by medseg compress --int8)',
    );
  const file = o.onnx ? await readOnnxFile(o.onnx, o.engine === 'onnx-int8') : null;
  if (file && o.folds && (o.folds.length !== 1 || o.folds[0] !== file.fold))
    throw new PredictOptionError(`${o.onnx} is the network of fold ${file.fold}; drop --folds`);
  const inputs = await listInputs(o.input, { series: o.series });
  if (o.format === 'dicom-seg' || o.format === 'rtstruct') {
    const notDicom = inputs.filter((c) => c.source.kind !== 'dicom');
    const what = o.format === 'rtstruct' ? 'an RTSTRUCT' : 'a DICOM SEG';
    if (notDicom.length)
      throw new PredictOptionError(
        `--format ${o.format} needs DICOM input (${what} references its source slices); not DICOM: ${notDicom.map(caseInput).join(', ')}`,
      );
  }
  if (o.deidentify && ((o.format !== undefined && o.format !== 'dicom-seg' && o.format !== 'rtstruct') || inputs.some((c) => c.source.kind !== 'dicom'))) {
    throw new PredictOptionError('--deidentify applies to DICOM SEG / RTSTRUCT results, from DICOM input');
  }
  const segmentCodes = o.segmentCodes ? await readSegmentCodes(o.segmentCodes) : undefined;
  const model = loadModel(o.model, { folds: file ? [file.fold] : o.folds, checkpoint: o.checkpoint });
  if (file && (file.architecture !== model.plan.network.architecture || JSON.stringify(file.labels) !== JSON.stringify(model.plan.labels))) {
    disposeModel(model);
    throw new PredictOptionError(`${o.onnx} is a ${file.architecture} for other labels or another model than ${o.model}`);
  }
  if (o.format === 'png' && model.plan.dims !== '2d') {
    disposeModel(model);
    throw new PredictOptionError('--format png holds 2D images, and this model is 3D: use nifti or nrrd');
  }
  if (o.uncertainty?.sources?.includes('mc-dropout') && !model.nets.every(supportsMcDropout)) {
    disposeModel(model);
    throw new PredictOptionError(
      `--uncertainty mc-dropout needs dropout in the network, and this ${model.plan.network.architecture} has none (hybridnet has it): use ensemble or tta`,
    );
  }
  let onnx: { networks: NetworkPass[]; dispose(): void } | null = null;
  if (onnxEngine) {
    try {
      const engines = await import('../deploy/onnx-predict.ts');
      onnx = file
        ? engines.createFilePasses(model, file.bytes)
        : o.engine === 'onnx-int8'
          ? await engines.createInt8Passes(model, o.calibration!)
          : engines.createOnnxPasses(model);
    } catch (e) {
      disposeModel(model);
      throw e;
    }
  }
  const deid = o.deidentify ? { ...o.deidentify, state: o.deidentify.state ?? newDeidentifyState() } : undefined;
  mkdirSync(o.out, { recursive: true });
  const progress = o.progress ?? createProgress('auto');
  const outputs: PredictedCase[] = [];
  const failures: CaseFailure[] = [];
  const folds = `${model.nets.length} fold${model.nets.length > 1 ? 's' : ''}`;
  try {
    for (const [i, c] of inputs.entries()) {
      const input = caseInput(c);
      try {
        const images = await readInputCase(c, model.plan.channels.length);
        const format = o.format ?? defaultOutputFormat(c.source);
        checkOutputFormat(format, c, images[0]!);
        let started = false;
        let pred;
        try {
          pred = predictVolumes(model, images, {
            networks: onnx?.networks,
            tta: o.tta,
            keepProbabilities: o.saveProbabilities,
            uncertainty: o.uncertainty,
            onTile: (done, total) => {
              if (!started) progress.start(total, `case ${i + 1}/${inputs.length} ${c.id} (${folds}), ${o.uncertainty ? 'uncertainty members' : 'tiles'}`);
              started = true;
              progress.update(done);
            },
          });
        } finally {
          if (started) progress.stop();
        }
        mkdirSync(join(o.out, c.subdir), { recursive: true });
        const written = await writePrediction(o.out, c, format, images[0]!, pred, model.plan, { modelDir: o.model, segmentCodes, deidentify: deid });
        outputs.push({
          input,
          output: written.labels,
          probabilities: written.probabilities,
          ...(written.uncertainty ? { uncertainty: written.uncertainty, flagged: pred.uncertainty!.flagged } : {}),
          seconds: pred.seconds,
        });
      } catch (e) {
        if (!(e instanceof MedsegIoError)) throw e;
        failures.push({ input, code: e.code, message: e.message.includes(input) ? e.message : `${input}: ${e.message}` });
      }
    }
  } finally {
    onnx?.dispose();
    disposeModel(model);
  }
  if (failures.length) throw new PredictionFailures(failures, inputs.length, outputs, resolve(o.input));
  return { outputs };
}
