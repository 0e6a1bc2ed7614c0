/**
 * The onnxruntime engine for a loaded model folder: each fold's network is
 * exported to ONNX in memory (export-model.ts, with its metadata) and run by
 * an OnnxNetwork, as the network passes predictVolumes takes in place of the
 * libtorch nets. Preprocessing, sliding window, TTA, fold ensembling and
 * postprocessing stay the same code for both engines.
 */
import type { LoadedModel } from '../infer/predict.ts';
import { exportLoadedFold } from './export-model.ts';
import { OnnxNetwork, type OnnxNetworkOptions } from './onnx-engine.ts';

export type Engine = 'torch' | 'onnx';

export interface OnnxPasses {
  networks: OnnxNetwork[];
  /** Export time of all folds, seconds. */
  exportSeconds: number;
  dispose(): void;
}

export function createOnnxPasses(model: LoadedModel, o: OnnxNetworkOptions = {}): OnnxPasses {
  const t0 = performance.now();
  const networks: OnnxNetwork[] = [];
  try {
    for (let k = 0; k < model.nets.length; k++) networks.push(new OnnxNetwork(exportLoadedFold(model, k).bytes, o));
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
