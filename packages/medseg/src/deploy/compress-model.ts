/**
 * Int8 compression of one fold of a model folder: export it to ONNX with the
 * plan in its metadata, calibrate activation ranges on patches of training
 * cases preprocessed as training does (one patch of the plan's size at the
 * centre of each case), quantize (quantize.ts), write the file, and time one
 * network pass of the fp32 and int8 models in onnxruntime on this machine.
 */
import * as ort from 'onnxruntime-node';
import { disposeModel, loadModel, prepareInput } from '../infer/predict.ts';
import { readDataset } from '../data/dataset.ts';
import { readVolume } from '../io/read.ts';
import { listFolds, type CheckpointChoice } from '../plan/model-folder.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import { exportLoadedFold } from './export-model.ts';
import { quantizeInt8, QuantizeError, type CalibrationInput, type Calibrator, type QuantizationSummary } from './quantize.ts';

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

/** Median ms of `passes` runs of one input, after two untimed ones. */
async function timePass(model: Uint8Array, x: CalibrationInput, passes: number): Promise<number> {
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

export async function compressModelInt8(modelDir: string, out: string, o: CompressInt8Options): Promise<CompressInt8Result> {
  const fold = o.fold ?? listFolds(modelDir)[0]?.fold;
  if (fold === undefined) throw new QuantizeError(`${modelDir} has no trained fold`);
  const want = o.cases ?? 8;
  if (!Number.isInteger(want) || want < 1) throw new QuantizeError(`calibration cases must be a whole number >= 1, got ${want}`);
  const ds = readDataset(o.dataset);
  const chosen = ds.training.slice(0, want);
  if (chosen.length === 0) throw new QuantizeError(`${o.dataset} has no training cases to calibrate on`);

  const model = loadModel(modelDir, { folds: [fold], checkpoint: o.checkpoint });
  try {
    const plan = model.plan;
    if (ds.channels.length !== plan.channels.length) {
      throw new QuantizeError(`the model takes ${plan.channels.length} channel(s) (${plan.channels.join(', ')}), ${o.dataset} has ${ds.channels.length}`);
    }
    const calibration: CalibrationInput[] = [];
    for (const c of chosen) {
      const vols = await Promise.all(c.imagePaths.map((p) => readVolume(p)));
      const pc = prepareInput(plan, vols).case;
      calibration.push(centrePatch(pc.data, pc.channels, pc.shape, plan.patchSize));
    }
    const { bytes: fp32 } = exportLoadedFold(model, 0);
    const { bytes, summary } = await quantizeInt8(fp32, {
      calibration,
      calibrator: o.calibrator,
      metadata: { 'medseg.calibration': JSON.stringify({ dataset: ds.name, cases: chosen.map((c) => c.id), patch: 'centre of each preprocessed case' }) },
    });
    writeFileAtomicSync(out, bytes);
    const passes = o.timedPasses ?? 10;
    let latency: CompressInt8Result['latency'] = null;
    if (passes > 0) {
      const fp32Ms = await timePass(fp32, calibration[0]!, passes);
      const int8Ms = await timePass(bytes, calibration[0]!, passes);
      latency = { patch: plan.patchSize, fp32Ms, int8Ms, speedup: fp32Ms / int8Ms };
    }
    return { path: out, fold, fp32Bytes: fp32.length, int8Bytes: bytes.length, casesUsed: chosen.map((c) => c.id), summary, latency };
  } finally {
    disposeModel(model);
  }
}
