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
import { caseScore, triageMismatch, type CaseUncertainty } from '../../infer/case-score.ts';
import type { UncertaintySource } from '../../infer/uncertainty-sources.ts';
import { argmaxProbabilities, predictMembersWeb } from './members-web.ts';
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
  /**
   * Also the uncertainty maps and the case's triage score and flag: the TTA
   * passes run as members (members-web.ts) at the model's temperature, and the
   * labels are the argmax of their mean probabilities, as `medseg predict
   * --uncertainty` does.
   */
  uncertainty?: boolean;
  onTile?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** A case's uncertainty as `medseg predict --uncertainty` reports it. */
export interface WebUncertainty {
  /** Predictive entropy of the members' mean probabilities / log K, per voxel of the input grid [Z, Y, X] (0 outside the nonzero box). */
  entropy: Float32Array;
  /** Mutual information / log K, on the same grid. */
  mutualInformation: Float32Array;
  /** The triage score (score.meanEntropy) and what it was computed over. */
  score: CaseUncertainty;
  sources: UncertaintySource[];
  temperature: number;
  /** Whether the score reaches the model's review threshold; null without a rule or when the rule was fitted on other members (note says why). */
  flagged: boolean | null;
  threshold: number | null;
  note?: string;
}

export interface WebPrediction {
  /** Label per voxel of the input grid [Z, Y, X]. */
  labels: Uint8Array;
  /** Network passes per tile (1, or the mirror combinations with TTA) and tiles. */
  passesPerTile: number;
  tiles: number;
  seconds: number;
  uncertainty?: WebUncertainty;
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
  const window = { patchSize: info.patchSize, stepFraction: info.inference.stepFraction, onTile: o.onTile, signal: o.signal };
  const n = cz * cy * cx;
  let inBox: Uint8Array;
  let tiles: number;
  let boxMaps: { entropy: Float32Array; mutualInformation: Float32Array } | null = null;
  let uncertainty: Omit<WebUncertainty, 'entropy' | 'mutualInformation'> | null = null;
  if (o.uncertainty) {
    const cal = info.calibration;
    const temperature = cal?.temperature ?? 1;
    const maps = await predictMembersWeb(model, pre.data, spatial, { ...window, mirrorAxes, transposeAxes, temperature });
    tiles = maps.tiles;
    inBox = argmaxProbabilities(maps.meanProbabilities, maps.classes, n);
    const score = caseScore(maps.predictiveEntropy, maps.mutualInformation, inBox, maps.classes, maps.members);
    const sources: UncertaintySource[] = mirrorAxes.length || transposeAxes.length ? ['tta'] : [];
    const note = cal?.triage ? triageMismatch(cal, sources, maps.members) : null;
    const threshold = cal?.triage && note === null ? cal.triage.threshold : null;
    uncertainty = {
      score,
      sources,
      temperature,
      flagged: threshold === null ? null : score.meanEntropy >= threshold,
      threshold,
      ...(note ? { note } : {}),
    };
    const logK = Math.log(Math.max(2, maps.classes));
    for (const m of [maps.predictiveEntropy, maps.mutualInformation]) for (let i = 0; i < n; i++) m[i] = m[i]! / logK;
    boxMaps = { entropy: maps.predictiveEntropy, mutualInformation: maps.mutualInformation };
  } else {
    const r = await slidingWindowLogitsWeb(model, pre.data, spatial, { ...window, mirrorAxes, transposeAxes });
    tiles = r.tiles;
    inBox = softmaxArgmax(r.logits, r.classes, n);
  }
  const [Z, Y, X] = c.shape;
  /** The box's values on the input grid, zero outside it. */
  const onGrid = <A extends Uint8Array | Float32Array>(box: A, out: A): A => {
    const [[z0], [y0], [x0]] = pre.box;
    for (let z = 0; z < cz; z++) for (let y = 0; y < cy; y++) out.set(box.subarray((z * cy + y) * cx, (z * cy + y + 1) * cx), ((z + z0) * Y + y + y0) * X + x0);
    return out;
  };
  const labels = onGrid(inBox, new Uint8Array(Z * Y * X));
  applyPostprocessing(labels, [X, Y, Z], info.postprocessing.keepLargestComponent);
  const passesPerTile = 2 ** mirrorAxes.length * (transposeAxes.length ? 2 : 1);
  const seconds = (performance.now() - t0) / 1000;
  if (uncertainty && boxMaps) {
    const entropy = onGrid(boxMaps.entropy, new Float32Array(Z * Y * X));
    const mutualInformation = onGrid(boxMaps.mutualInformation, new Float32Array(Z * Y * X));
    return { labels, passesPerTile, tiles, seconds, uncertainty: { ...uncertainty, entropy, mutualInformation } };
  }
  return { labels, passesPerTile, tiles, seconds };
}
