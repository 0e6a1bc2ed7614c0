/**
 * A case's test-time passes as uncertainty members in a web page: what
 * predictMembers (infer/uncertainty.ts) does on libtorch, on plain arrays.
 * Each member mirrors (and, for 2D models that transpose, swaps the two axes
 * of) the whole preprocessed image, runs the sliding window without TTA and
 * maps the logits back; tiles and Gaussian weights map onto each other, so
 * the members are the sliding window's own TTA passes. Members are folded in
 * one at a time (sums of softmax(logits / T), of its entropy and of the
 * logits), so memory does not grow with their number.
 */
import { flipAxes, slidingWindowLogitsWeb, transposePlane } from './sliding-window.ts';
import { WebModelError, type WebModel } from './web-model.ts';

type Shape3 = [number, number, number];

/** Clamp before log, as the libtorch members do: 0 · log 0 stays finite. */
const EPS = 1e-12;

export interface WebMemberOptions {
  /** Mirrored spatial axes (0 = the first spatial axis); every subset is a member, the identity first. */
  mirrorAxes: number[];
  /** 2D: [0, 1] adds every mirror with the plane's two axes swapped. */
  transposeAxes: number[];
  /** Probabilities are softmax(logits / temperature). */
  temperature: number;
  patchSize: number[];
  stepFraction: number;
  /** Progress over all members' tiles. */
  onTile?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface WebMemberMaps {
  classes: number;
  members: number;
  tiles: number;
  /** [K, ...spatial] */
  meanProbabilities: Float32Array;
  /** [...spatial], nats: entropy of the mean probabilities. */
  predictiveEntropy: Float32Array;
  /** [...spatial], nats: predictive entropy minus the members' mean entropy (>= 0). */
  mutualInformation: Float32Array;
}

/** Every subset of the axes, the empty one first (the member order of the libtorch members). */
function subsets(axes: number[]): number[][] {
  const out: number[][] = [[]];
  for (const a of axes) for (const c of [...out]) out.push([...c, a]);
  return out;
}

/** image: preprocessed [C, ...spatial] with spatial [Z, Y, X] or [Y, X] (2D). */
export async function predictMembersWeb(model: WebModel, image: Float32Array, spatial: number[], o: WebMemberOptions): Promise<WebMemberMaps> {
  const T = o.temperature;
  if (!(T > 0 && Number.isFinite(T))) throw new WebModelError(`the model's temperature must be a positive number, got ${T}`);
  const nd = spatial.length;
  const lift = 3 - nd;
  const shape = [...Array<number>(lift).fill(1), ...spatial] as Shape3;
  const channels = model.info.channels.length;
  const n = shape[0] * shape[1] * shape[2];
  const swaps = o.transposeAxes.length ? [false, true] : [false];
  if (o.transposeAxes.length && (nd !== 2 || o.transposeAxes.join() !== '0,1')) {
    throw new WebModelError(`transposing TTA swaps the two axes of a 2D image; got axes [${o.transposeAxes}] of a ${nd}D image`);
  }
  const flips = subsets(o.mirrorAxes.map((a) => a + lift));
  const members = swaps.length * flips.length;
  let sumP: Float32Array | null = null;
  let sumH: Float32Array | null = null;
  let classes = 0;
  let tiles = 0;
  let done = 0;
  for (const swap of swaps) {
    for (const flip of flips) {
      let x = flipAxes(image, channels, shape, flip);
      let memberShape = shape;
      let patch = o.patchSize;
      if (swap) {
        x = transposePlane(x, channels, shape);
        memberShape = [shape[0], shape[2], shape[1]];
        patch = [o.patchSize[1]!, o.patchSize[0]!];
      }
      const memberSpatial = memberShape.slice(lift);
      const before = done;
      const r = await slidingWindowLogitsWeb(model, x, memberSpatial, {
        patchSize: patch,
        stepFraction: o.stepFraction,
        mirrorAxes: [],
        transposeAxes: [],
        signal: o.signal,
        onTile: o.onTile ? (d, total) => o.onTile!(before + d, total * members) : undefined,
      });
      classes = r.classes;
      tiles = r.tiles;
      done += r.tiles;
      let logits = r.logits;
      if (swap) logits = transposePlane(logits, classes, memberShape);
      logits = flipAxes(logits, classes, shape, flip);
      sumP ??= new Float32Array(classes * n);
      sumH ??= new Float32Array(n);
      foldMember(logits, classes, n, T, sumP, sumH);
    }
  }
  const meanProbabilities = sumP!;
  const predictiveEntropy = new Float32Array(n);
  const mutualInformation = new Float32Array(n);
  for (let v = 0; v < n; v++) {
    let h = 0;
    for (let k = 0; k < classes; k++) {
      const p = Math.fround(meanProbabilities[k * n + v]! / members);
      meanProbabilities[k * n + v] = p;
      h -= p * Math.log(Math.max(p, EPS));
    }
    predictiveEntropy[v] = h;
    // Rounding can make H[p̄] - E H[p] a hair below zero where members agree.
    mutualInformation[v] = Math.max(0, Math.fround(h) - sumH![v]! / members);
  }
  return { classes, members, tiles, meanProbabilities, predictiveEntropy, mutualInformation };
}

/** Adds softmax(logits / T) [K, n] to sumP and its entropy to sumH. */
function foldMember(logits: Float32Array, classes: number, n: number, T: number, sumP: Float32Array, sumH: Float32Array): void {
  const p = new Float64Array(classes);
  for (let v = 0; v < n; v++) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[k * n + v]! / T);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      p[k] = Math.exp(logits[k * n + v]! / T - max);
      sum += p[k]!;
    }
    let h = 0;
    for (let k = 0; k < classes; k++) {
      const q = p[k]! / sum;
      sumP[k * n + v] = sumP[k * n + v]! + q;
      h -= q * Math.log(Math.max(q, EPS));
    }
    sumH[v] = sumH[v]! + h;
  }
}

/** The first most probable class per voxel of [K, n] probabilities, as argmax over dim 0. */
export function argmaxProbabilities(p: Float32Array, classes: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let v = 0; v < n; v++) {
    let best = 0;
    let top = p[v]!;
    for (let k = 1; k < classes; k++) {
      if (p[k * n + v]! > top) {
        top = p[k * n + v]!;
        best = k;
      }
    }
    out[v] = best;
  }
  return out;
}
