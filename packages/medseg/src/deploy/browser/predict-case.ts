/**
 * A whole case segmented in a web page by an exported model, with the steps
 * of prediction (infer/predict.ts) for an image at the model's spacing: crop
 * to the nonzero box and normalise (preprocess.ts), the sliding window with
 * the metadata's patch, step and mirroring TTA (sliding-window.ts), softmax,
 * argmax, background outside the box, and the keep-largest-component
 * postprocessing the model chose. Voxels are [Z, Y, X] with x fastest, the
 * order of a NIfTI file's data.
 */
import { applyPostprocessing } from '../../infer/postprocess.ts';
import { preprocessAtTargetSpacing } from './preprocess.ts';
import { slidingWindowLogitsWeb } from './sliding-window.ts';
import { WebModelError, type WebModel } from './web-model.ts';

type Zyx = [number, number, number];

export interface WebCase {
  /** float32 [C, Z, Y, X], x fastest. */
  image: Float32Array;
  shape: Zyx;
  /** mm, [z, y, x]. */
  spacing: Zyx;
}

export interface WebPredictOptions {
  /** false: one pass per tile instead of the model's mirroring (and, in 2D, transposing) TTA. */
  tta?: boolean;
  onTile?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface WebPrediction {
  /** Label per voxel of the input grid [Z, Y, X]. */
  labels: Uint8Array;
  /** Network passes per tile (1, or the mirror combinations with TTA) and tiles. */
  passesPerTile: number;
  tiles: number;
  seconds: number;
}

/** Softmax over the classes of logits [K, n] then the first most probable class, as predictVolumes takes it. */
function softmaxArgmax(logits: Float32Array, classes: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const p = new Float32Array(classes);
  for (let v = 0; v < n; v++) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[k * n + v]!);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      p[k] = Math.exp(logits[k * n + v]! - max);
      sum = Math.fround(sum + p[k]!);
    }
    let best = 0;
    let top = -1;
    for (let k = 0; k < classes; k++) {
      const q = Math.fround(p[k]! / sum);
      if (q > top) {
        top = q;
        best = k;
      }
    }
    out[v] = best;
  }
  return out;
}

export async function predictCaseWeb(model: WebModel, c: WebCase, o: WebPredictOptions = {}): Promise<WebPrediction> {
  const t0 = performance.now();
  const info = model.info;
  const pre = preprocessAtTargetSpacing(info, c.image, c.shape, c.spacing);
  const [cz, cy, cx] = pre.shape;
  if (info.dims === '2d' && cz !== 1) {
    throw new WebModelError(`a 2D model segments one slice; the image has ${cz} slices with nonzero voxels`);
  }
  const spatial = info.dims === '2d' ? [cy, cx] : [cz, cy, cx];
  const mirrorAxes = o.tta === false ? [] : info.inference.mirrorAxes;
  const transposeAxes = o.tta === false ? [] : info.inference.transposeAxes;
  const { logits, classes, tiles } = await slidingWindowLogitsWeb(model, pre.data, spatial, {
    patchSize: info.patchSize,
    stepFraction: info.inference.stepFraction,
    mirrorAxes,
    transposeAxes,
    onTile: o.onTile,
    signal: o.signal,
  });
  const inBox = softmaxArgmax(logits, classes, cz * cy * cx);
  const [Z, Y, X] = c.shape;
  const labels = new Uint8Array(Z * Y * X);
  const [[z0], [y0], [x0]] = pre.box;
  for (let z = 0; z < cz; z++)
    for (let y = 0; y < cy; y++) labels.set(inBox.subarray((z * cy + y) * cx, (z * cy + y + 1) * cx), ((z + z0) * Y + y + y0) * X + x0);
  applyPostprocessing(labels, [X, Y, Z], info.postprocessing.keepLargestComponent);
  return { labels, passesPerTile: 2 ** mirrorAxes.length * (transposeAxes.length ? 2 : 1), tiles, seconds: (performance.now() - t0) / 1000 };
}
