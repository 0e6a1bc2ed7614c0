/**
 * Compression of one fold of a model folder to an ONNX file: prune its
 * network (prune.ts) and/or export it to ONNX with the plan in its metadata,
 * calibrate activation ranges on patches of training cases preprocessed as
 * training does (one patch of the plan's size at the centre of each case),
 * quantize (quantize.ts), write the file, and time one network pass of the
 * unpruned fp32 model and of the compressed one in onnxruntime on this machine.
 */
import * as ort from 'onnxruntime-node';
import { disposeModel, loadModel, prepareInput } from '../infer/predict.ts';
import { readDataset } from '../data/dataset.ts';
import { readVolume } from '../io/read.ts';
import type { LoadedModel } from '../infer/predict.ts';
import { listFolds, type CheckpointChoice } from '../plan/model-folder.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import { exportLoadedFold } from './export-model.ts';
import { quantizeInt8, QuantizeError, type CalibrationInput, type Calibrator, type QuantizationSummary } from './quantize.ts';
import { quantizeDynamicLinear, type DynamicQuantizationSummary } from './quantize-dynamic.ts';
import { pruneNetwork, type FineTuneRecord, type PruneSettings, type PruneSummary } from './prune.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { Plan } from '../plan/types.ts';
import { PRUNING_METADATA_KEY } from '../plan/model-weights.ts';

export interface CompressInt8Options {
  /** Dataset folder (dataset.json + imagesTr/labelsTr) whose training cases calibrate the activations. */
  dataset: string;
  /** Training cases to calibrate on (default 8; the first ones in the dataset's order). */
  cases?: number;
  calibrator?: Calibrator;
  fold?: number;
  checkpoint?: CheckpointChoice;
  /** Network passes timed per engine (default 10, after 2 untimed). 0 skips the timing. */
  timedPasses?: number;
}

export interface CompressInt8Result {
  path: string;
  fold: number;
  fp32Bytes: number;
  int8Bytes: number;
  casesUsed: string[];
  summary: QuantizationSummary;
  /** Median milliseconds of one network pass on a batch of one patch, or null when not timed. */
  latency: { patch: number[]; fp32Ms: number; int8Ms: number; speedup: number } | null;
}

/** A patch of `size` (spatial, [z, y, x] or [y, x]) at the centre of a preprocessed case, zero-padded where the case is smaller. */
export function centrePatch(data: Float32Array, channels: number, shape: [number, number, number], size: number[]): CalibrationInput {
  const full = size.length === 3 ? (size as [number, number, number]) : ([1, size[0]!, size[1]!] as [number, number, number]);
  const [Z, Y, X] = shape;
  const [pz, py, px] = full;
  const start = [Z, Y, X].map((n, i) => Math.floor((n - full[i]!) / 2));
  const out = new Float32Array(channels * pz * py * px);
  for (let c = 0; c < channels; c++)
    for (let z = 0; z < pz; z++) {
      const sz = z + start[0]!;
      if (sz < 0 || sz >= Z) continue;
      for (let y = 0; y < py; y++) {
        const sy = y + start[1]!;
        if (sy < 0 || sy >= Y) continue;
        for (let x = 0; x < px; x++) {
          const sx = x + start[2]!;
          if (sx < 0 || sx >= X) continue;
          out[((c * pz + z) * py + y) * px + x] = data[((c * Z + sz) * Y + sy) * X + sx]!;
        }
      }
    }
  return { data: out, dims: [1, channels, ...size] };
}

/** Median ms of `passes` runs of one input in onnxruntime (default threads), after two untimed ones. */
export async function timePass(model: Uint8Array, x: CalibrationInput, passes: number): Promise<number> {
  const session = await ort.InferenceSession.create(model);
  try {
    const feed = { image: new ort.Tensor('float32', x.data, x.dims) };
    for (let i = 0; i < 2; i++) await session.run(feed);
    const times: number[] = [];
    for (let i = 0; i < passes; i++) {
      const t0 = performance.now();
      await session.run(feed);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)]!;
  } finally {
    await session.release();
  }
}

/** Where the activation ranges come from: the centre patch of the first `cases` training cases of a dataset. */
export interface CalibrationSource {
  /** Dataset folder (dataset.json + imagesTr/labelsTr). */
  dataset: string;
  /** Training cases to calibrate on (default 8; the first ones in the dataset's order). */
  cases?: number;
}

/** Calibration patches for a loaded model: each chosen training case preprocessed with the model's plan, its centre patch. */
export async function calibrationPatches(
  model: LoadedModel,
  source: CalibrationSource,
): Promise<{ inputs: CalibrationInput[]; dataset: string; cases: string[] }> {
  const want = source.cases ?? 8;
  if (!Number.isInteger(want) || want < 1) throw new QuantizeError(`calibration cases must be a whole number >= 1, got ${want}`);
  const ds = readDataset(source.dataset);
  const chosen = ds.training.slice(0, want);
  if (chosen.length === 0) throw new QuantizeError(`${source.dataset} has no training cases to calibrate on`);
  const plan = model.plan;
  if (ds.channels.length !== plan.channels.length) {
    throw new QuantizeError(`the model takes ${plan.channels.length} channel(s) (${plan.channels.join(', ')}), ${source.dataset} has ${ds.channels.length}`);
  }
  const inputs: CalibrationInput[] = [];
  for (const c of chosen) {
    const vols = await Promise.all(c.imagePaths.map((p) => readVolume(p)));
    const pc = prepareInput(plan, vols).case;
    inputs.push(centrePatch(pc.data, pc.channels, pc.shape, plan.patchSize));
  }
  return { inputs, dataset: ds.name, cases: chosen.map((c) => c.id) };
}

/** Quantizes fold k of a loaded model (its network as it is now, pruned or not) with the given calibration patches. */
export async function quantizeLoadedFold(
  model: LoadedModel,
  k: number,
  calibration: Awaited<ReturnType<typeof calibrationPatches>>,
  calibrator?: Calibrator,
  metadata: Record<string, string> = {},
  linear = true,
): Promise<{ fp32: Uint8Array; bytes: Uint8Array; summary: QuantizationSummary }> {
  const { bytes: fp32 } = exportLoadedFold(model, k, metadata);
  const { bytes, summary } = await quantizeInt8(fp32, {
    calibration: calibration.inputs,
    calibrator,
    linear,
    metadata: { 'medseg.calibration': JSON.stringify({ dataset: calibration.dataset, cases: calibration.cases, patch: 'centre of each preprocessed case' }) },
  });
  return { fp32, bytes, summary };
}

export interface CompressOptions {
  /** Static int8 quantization, activations calibrated on training cases. */
  int8?: CalibrationSource & { calibrator?: Calibrator };
  /**
   * Dynamic int8 for the weight MatMuls (quantize-dynamic.ts): with `int8`, the convolutions are
   * static int8 and the linear layers dynamic; alone, only the linear layers are quantized.
   */
  dynamicInt8?: boolean;
  /** Prune the network before the export (and before the quantization). */
  prune?: PruneSettings;
  fold?: number;
  checkpoint?: CheckpointChoice;
  /** Network passes timed per model (default 10, after 2 untimed). 0 skips the timing. */
  timedPasses?: number;
  /**
   * Trains the pruned network further before the export (pipeline/finetune-pruned.ts does, with the
   * trainer); its record goes in the pruning summary and so in the model's metadata.
   */
  fineTune?: (net: SegmentationNetwork, plan: Plan, pruning: PruneSummary, fold: number) => Promise<FineTuneRecord>;
}

export interface CompressResult {
  path: string;
  fold: number;
  /** Size of the unpruned fp32 export and of the written file. */
  fp32Bytes: number;
  bytes: number;
  casesUsed: string[];
  quantization: QuantizationSummary | null;
  dynamicQuantization: DynamicQuantizationSummary | null;
  pruning: PruneSummary | null;
  /** Median milliseconds of one network pass on a batch of one patch (unpruned fp32 vs the written model), or null when not timed. */
  latency: { patch: number[]; fp32Ms: number; compressedMs: number; speedup: number } | null;
}

export async function compressModel(modelDir: string, out: string, o: CompressOptions): Promise<CompressResult> {
  if (!o.int8 && !o.prune && !o.dynamicInt8) throw new QuantizeError('nothing to compress: ask for int8 quantization, pruning or both');
  if (o.fineTune && !o.prune) throw new QuantizeError('fine-tuning follows pruning: ask for pruning too');
  const fold = o.fold ?? listFolds(modelDir)[0]?.fold;
  if (fold === undefined) throw new QuantizeError(`${modelDir} has no trained fold`);
  const model = loadModel(modelDir, { folds: [fold], checkpoint: o.checkpoint });
  try {
    const plan = model.plan;
    const calibration = o.int8 ? await calibrationPatches(model, o.int8) : null;
    const { bytes: fp32 } = exportLoadedFold(model, 0);
    let pruning: PruneSummary | null = null;
    const metadata: Record<string, string> = {};
    if (o.prune) {
      pruning = pruneNetwork(model.nets[0]!, [1, plan.network.inChannels, ...plan.patchSize], o.prune).summary;
      if (o.fineTune) pruning.fineTuned = await o.fineTune(model.nets[0]!, plan, pruning, fold);
      metadata[PRUNING_METADATA_KEY] = JSON.stringify(pruning);
    }
    let bytes: Uint8Array;
    let quantization: QuantizationSummary | null = null;
    if (calibration) {
      const q = await quantizeLoadedFold(model, 0, calibration, o.int8!.calibrator, metadata, !o.dynamicInt8);
      bytes = q.bytes;
      quantization = q.summary;
    } else bytes = exportLoadedFold(model, 0, metadata).bytes;
    let dynamicQuantization: DynamicQuantizationSummary | null = null;
    if (o.dynamicInt8) {
      const d = quantizeDynamicLinear(bytes);
      if (d.summary.quantized === 0) throw new QuantizeError(`${plan.network.architecture} has no linear layers (weight MatMuls) to quantize dynamically`);
      bytes = d.bytes;
      dynamicQuantization = d.summary;
    }
    writeFileAtomicSync(out, bytes);
    const passes = o.timedPasses ?? 10;
    let latency: CompressResult['latency'] = null;
    if (passes > 0) {
      const x = calibration?.inputs[0] ?? {
        data: new Float32Array(plan.network.inChannels * plan.patchSize.reduce((a, b) => a * b, 1)),
        dims: [1, plan.network.inChannels, ...plan.patchSize],
      };
      const fp32Ms = await timePass(fp32, x, passes);
      const compressedMs = await timePass(bytes, x, passes);
      latency = { patch: plan.patchSize, fp32Ms, compressedMs, speedup: fp32Ms / compressedMs };
    }
    return {
      path: out,
      fold,
      fp32Bytes: fp32.length,
      bytes: bytes.length,
      casesUsed: calibration?.cases ?? [],
      quantization,
      dynamicQuantization,
      pruning,
      latency,
    };
  } finally {
    disposeModel(model);
  }
}

/** compressModel with int8 quantization alone, reported as before pruning existed. */
export async function compressModelInt8(modelDir: string, out: string, o: CompressInt8Options): Promise<CompressInt8Result> {
  const r = await compressModel(modelDir, out, {
    int8: { dataset: o.dataset, cases: o.cases, calibrator: o.calibrator },
    fold: o.fold,
    checkpoint: o.checkpoint,
    timedPasses: o.timedPasses,
  });
  return {
    path: r.path,
    fold: r.fold,
    fp32Bytes: r.fp32Bytes,
    int8Bytes: r.bytes,
    casesUsed: r.casesUsed,
    summary: r.quantization!,
    latency: r.latency && { patch: r.latency.patch, fp32Ms: r.latency.fp32Ms, int8Ms: r.latency.compressedMs, speedup: r.latency.speedup },
  };
}
