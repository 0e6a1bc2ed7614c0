/** Node's prediction of a volume with an exported model (onnxruntime-node, one pass per tile): the reference the page's masks are held to. */
import { readFileSync } from 'node:fs';
import { createFilePasses } from '@medseg/medseg/deploy/onnx-predict';
import { disposeModel, loadModel, predictVolumes } from '@medseg/medseg/infer/predict';
import type { Volume } from '@medseg/medseg/io/volume';

export interface OnnxReference {
  labels: Uint8Array;
  /** Class probabilities [C, voxels]: where two classes are within float32 noise, a mask may differ. */
  probabilities: Float32Array;
  seconds: number;
}

/** The model folder's plan and postprocessing around the exported ONNX file's network passes. */
export function onnxReference(modelDir: string, onnxPath: string, volume: Volume): OnnxReference {
  const loaded = loadModel(modelDir);
  const passes = createFilePasses(loaded, new Uint8Array(readFileSync(onnxPath)));
  try {
    const p = predictVolumes(loaded, [volume], { networks: passes.networks, keepProbabilities: true, tta: false });
    return { labels: p.labels.data as Uint8Array, probabilities: p.probabilities!.data as Float32Array, seconds: p.seconds };
  } finally {
    passes.dispose();
    disposeModel(loaded);
  }
}
