/**
 * The onnxruntime engines for a loaded model folder, as the network passes
 * predictVolumes takes in place of the libtorch nets; preprocessing, sliding
 * window, TTA, fold ensembling and postprocessing stay the same code for
 * every engine.
 *
 * - onnx: each fold's network exported to ONNX in memory (export-model.ts).
 * - onnx-int8: each fold exported and quantized in memory to static int8
 *   exactly as `medseg compress --int8` does (compress-model.ts: activation
 *   ranges from the centre patch of a dataset's first training cases), or a
 *   compressed .onnx file written by `medseg compress` run for the one fold
 *   it was made from (createFilePasses).
 */
import type { LoadedModel } from '../infer/predict.ts';
import { calibrationPatches, quantizeLoadedFold, type CalibrationSource } from './compress-model.ts';
import { exportLoadedFold } from './export-model.ts';
import { OnnxNetwork, type OnnxNetworkOptions } from './onnx-engine.ts';
import type { Calibrator } from './quantize.ts';

export type Engine = 'torch' | 'onnx' | 'onnx-int8';

export interface OnnxPasses {
  networks: OnnxNetwork[];
  /** Export (and quantization) time of all folds, seconds. */
  exportSeconds: number;
  dispose(): void;
}

function passes(models: Iterable<Uint8Array>, o: OnnxNetworkOptions, t0: number): OnnxPasses {
  const networks: OnnxNetwork[] = [];
  try {
    for (const bytes of models) networks.push(new OnnxNetwork(bytes, o));
  } catch (e) {
    for (const n of networks) n.dispose();
    throw e;
  }
  return {
    networks,
    exportSeconds: (performance.now() - t0) / 1000,
    dispose: () => networks.forEach((n) => n.dispose()),
  };
}

export function createOnnxPasses(model: LoadedModel, o: OnnxNetworkOptions = {}): OnnxPasses {
  const t0 = performance.now();
  function* exported() {
    for (let k = 0; k < model.nets.length; k++) yield exportLoadedFold(model, k).bytes;
  }
  return passes(exported(), o, t0);
}

/** Every fold quantized to int8 in memory, calibrated once on the dataset's training cases. */
export async function createInt8Passes(
  model: LoadedModel,
  source: CalibrationSource & { calibrator?: Calibrator },
  o: OnnxNetworkOptions = {},
): Promise<OnnxPasses> {
  const t0 = performance.now();
  const calibration = await calibrationPatches(model, source);
  const models: Uint8Array[] = [];
  for (let k = 0; k < model.nets.length; k++) models.push((await quantizeLoadedFold(model, k, calibration, source.calibrator)).bytes);
  return passes(models, o, t0);
}

/** One ONNX model (a file `medseg compress` or `medseg export` wrote) as the network pass of a model loaded with its one fold. */
export function createFilePasses(model: LoadedModel, bytes: Uint8Array, o: OnnxNetworkOptions = {}): OnnxPasses {
  if (model.nets.length !== 1) throw new Error(`an ONNX file is one fold's network; the model was loaded with ${model.nets.length} folds`);
  return passes([bytes], o, performance.now());
}
