/**
 * Is a map faithful to the model, or just a picture of the image?
 *
 * - Model-parameter randomisation (Adebayo et al. 2018): the same
 *   explanation from a network of the same architecture with freshly
 *   initialised weights. A map that barely changes (high Spearman rank
 *   correlation with the trained model's map) shows the image, not the model.
 *   Signed maps (occlusion, integrated gradients) can keep their structure
 *   with the sign flipped, so the correlation of the absolute values is
 *   taken too; the test passes when both are below 0.5.
 * - Deletion curve (Petsiuk et al. 2018, with Dice as the score): the most
 *   attributed voxels are set to the baseline in steps, the image is
 *   predicted again, and the Dice of the class against the intact image's
 *   prediction is recorded; a faithful map makes the Dice fall fast (a small
 *   area under the curve). The same curve for a random voxel order is the
 *   reference a map must beat.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { createNetwork } from '../models/registry.ts';
import { spearman } from '../eval/statistics/correlation.ts';
import { Rng } from '../util/random.ts';
import { explainImage, plainLogits, type ExplainImageOptions } from './explain-image.ts';

export interface RandomisationResult {
  /** Spearman rank correlation of the trained and the randomised model's maps. */
  spearman: number;
  /** The same for the maps' absolute values. */
  spearmanAbs: number;
  /** Both below 0.5: the map depends on the weights. */
  passes: boolean;
  seed: number;
}

/**
 * The model-parameter randomisation test of one method: `map` is the trained
 * network's map; the randomised network (by default createNetwork of the
 * same config, initialised from `seed`) explains the same image, region and target.
 */
export function randomisationTest(
  net: SegmentationNetwork,
  image: Tensor,
  region: Tensor,
  map: Tensor,
  o: ExplainImageOptions & { seed?: number; randomNetwork?: () => SegmentationNetwork },
): RandomisationResult {
  const seed = o.seed ?? 1234;
  // Seed torch's generator for the initialisation only, then give it its state back.
  const state = torch.getRngState();
  let random: SegmentationNetwork;
  try {
    torch.manualSeed(seed);
    random = (o.randomNetwork ?? (() => createNetwork(net.config)))();
  } finally {
    torch.setRngState(state);
    state.dispose();
  }
  random.eval();
  try {
    const other = explainImage(random, image, region, o);
    const a = map.toFloat32Array();
    const b = other.maps.get(other.primary)!.toFloat32Array();
    torch.dispose([...other.maps.values()]);
    const rho = spearman(a, b);
    const rhoAbs = spearman(
      a.map((v) => Math.abs(v)),
      b.map((v) => Math.abs(v)),
    );
    // A constant map (NaN correlation) carries no information about the weights either way: it does not pass.
    return { spearman: rho, spearmanAbs: rhoAbs, passes: rho < 0.5 && rhoAbs < 0.5, seed };
  } finally {
    random.dispose();
  }
}

export interface DeletionCurve {
  /** Fractions of the voxels deleted (0 .. 1). */
  fractions: number[];
  /** Dice of the class against the intact image's prediction, deleting in the map's order. */
  dice: number[];
  /** The same for a random order (the reference a map must beat). */
  randomDice: number[];
  /** Areas under the two curves (trapezoid over the fractions): lower is more faithful. */
  auc: number;
  randomAuc: number;
}

/** Dice of two 0/1 masks; NaN when both are empty. */
function dice(a: Float32Array, b: Float32Array): number {
  let inter = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! * b[i]!;
    sa += a[i]!;
    sb += b[i]!;
  }
  return sa + sb === 0 ? NaN : (2 * inter) / (sa + sb);
}

function trapezoid(x: number[], y: number[]): number {
  let s = 0;
  for (let i = 1; i < x.length; i++) s += ((x[i]! - x[i - 1]!) * (y[i]! + y[i - 1]!)) / 2;
  return s;
}

/**
 * Deletion curve of a map [...S] for the class's mask: `steps` + 1 fractions
 * from 0 to 1; deleted voxels (every channel) take the baseline value. Ties
 * in the map keep voxel order; the random order comes from util/random.ts.
 */
export function deletionCurve(
  net: SegmentationNetwork,
  image: Tensor,
  map: Tensor,
  classIndex: number,
  o: { patchSize: number[]; stepFraction?: number; steps?: number; baseline?: number; seed?: number; onProgress?: (done: number, total: number) => void },
): DeletionCurve {
  const steps = o.steps ?? 10;
  const fractions = Array.from({ length: steps + 1 }, (_, i) => i / steps);
  const values = map.toFloat32Array();
  const n = values.length;
  const byMap = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
  const rng = new Rng(o.seed ?? 99);
  const random = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [random[i], random[j]] = [random[j]!, random[i]!];
  }
  const predictions = 2 * fractions.length + 1;
  let done = 0;
  const maskOf = (img: Tensor) => {
    const m = torch.tidy(() =>
      plainLogits(net, img, { patchSize: o.patchSize, stepFraction: o.stepFraction }).argmax(0).eq(classIndex).float().toFloat32Array(),
    );
    o.onProgress?.(++done, predictions);
    return m;
  };
  const reference = maskOf(image);
  const curve = (order: number[]) =>
    fractions.map((f) =>
      torch.tidy(() => {
        const keep = new Float32Array(n).fill(1);
        const k = Math.round(f * n);
        for (let i = 0; i < k; i++) keep[order[i]!] = 0;
        const keepT = torch.tensor(keep, map.shape);
        // x * keep + baseline * (1 - keep), per channel.
        const deleted = image.mul(keepT).add(keepT.rsub(1).mul(o.baseline ?? 0));
        return dice(maskOf(deleted), reference);
      }),
    );
  const d = curve(byMap);
  const r = curve(random);
  return { fractions, dice: d, randomDice: r, auc: trapezoid(fractions, d), randomAuc: trapezoid(fractions, r) };
}
