/**
 * Voxel-wise uncertainty from several predictions of the same case
 * ("members"): the folds of an ensemble, the mirrored test-time passes, and
 * Monte-Carlo dropout samples (dropout kept on at inference, networks that
 * have dropout only). With p_s the class probabilities of member s and p̄ their mean:
 *
 *   predictive entropy   H[p̄]            = -Σ_k p̄_k log p̄_k         (total uncertainty)
 *   expected entropy     E_s H[p_s]                                  (aleatoric part)
 *   mutual information   H[p̄] - E_s H[p_s] >= 0                       (epistemic part: members disagree)
 *
 * Entropies are in nats; divide by log K for [0, 1]. Members are folded in
 * one at a time (sum of p, sum of H[p]), so memory does not grow with their
 * number.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { mirrorCombos, slidingWindowLogits, type SlidingWindowOptions } from './sliding-window.ts';

import { UNCERTAINTY_SOURCES, type UncertaintySource } from './uncertainty-sources.ts';
import { caseScore, type CaseUncertainty } from './case-score.ts';

export { UNCERTAINTY_SOURCES, type UncertaintySource, type CaseUncertainty };

/** Clamp before log: p log p -> 0 as p -> 0, and log(1e-12) keeps 0 * log 0 finite. */
const EPS = 1e-12;

/** -Σ_k p_k log p_k over dim 0 of [K, ...spatial] probabilities. */
export function entropyOf(p: Tensor): Tensor {
  return torch.tidy(() => p.mul(p.clamp(EPS, null).log()).sum(0).neg());
}

/** Running sums of members' probabilities, entropies and (when given) logits; `finish` gives the statistics. */
export class MemberAccumulator {
  private sumP: Tensor | null = null;
  private sumH: Tensor | null = null;
  private sumL: Tensor | null = null;
  members = 0;

  /** Folds in one member's probabilities [K, ...spatial] (and its logits); the caller keeps ownership of both. */
  add(p: Tensor, logits?: Tensor): void {
    if (this.members > 0 && (logits === undefined) !== (this.sumL === null)) throw new Error('give logits with every member or with none');
    torch.tidy(() => {
      const h = entropyOf(p);
      const nextP = this.sumP ? this.sumP.add(p) : p.clone();
      const nextH = this.sumH ? this.sumH.add(h) : h;
      const nextL = logits ? (this.sumL ? this.sumL.add(logits) : logits.clone()) : null;
      this.sumP?.dispose();
      this.sumH?.dispose();
      this.sumL?.dispose();
      this.sumP = torch.keep(nextP);
      this.sumH = torch.keep(nextH);
      this.sumL = nextL ? torch.keep(nextL) : null;
    });
    this.members++;
  }

  /** Mean probabilities [K, ...], predictive entropy, expected entropy and mutual information [...]; frees the sums. */
  finish(): UncertaintyMaps {
    if (!this.sumP || !this.sumH) throw new Error('no member was added');
    const n = this.members;
    const out = torch.tidy(() => {
      const mean = this.sumP!.div(n);
      const predictive = entropyOf(mean);
      const expected = this.sumH!.div(n);
      // Rounding can make H[p̄] - E H[p] a hair below zero where members agree.
      const mi = predictive.sub(expected).clamp(0, null);
      return [mean, predictive, expected, mi, ...(this.sumL ? [this.sumL.div(n)] : [])].map((t) => torch.keep(t));
    });
    for (const t of [this.sumP, this.sumH, this.sumL]) t?.dispose();
    this.sumP = this.sumH = this.sumL = null;
    const [mean, predictive, expected, mi, logits] = out as [Tensor, Tensor, Tensor, Tensor, Tensor | undefined];
    return {
      meanProbabilities: mean,
      predictiveEntropy: predictive,
      expectedEntropy: expected,
      mutualInformation: mi,
      members: n,
      ...(logits ? { meanLogits: logits } : {}),
    };
  }
}

export interface UncertaintyMaps {
  /** [K, ...spatial] */
  meanProbabilities: Tensor;
  /** [...spatial], nats */
  predictiveEntropy: Tensor;
  expectedEntropy: Tensor;
  mutualInformation: Tensor;
  members: number;
  /** [K, ...spatial] members' mean logits (before any temperature): argmax is the sliding window's TTA prediction. */
  meanLogits?: Tensor;
}

export function disposeUncertaintyMaps(m: UncertaintyMaps): void {
  for (const t of [m.meanProbabilities, m.predictiveEntropy, m.expectedEntropy, m.mutualInformation, m.meanLogits]) t?.dispose();
}

export interface MemberOptions {
  /** Sources of members (default: ensemble and tta). */
  sources?: UncertaintySource[];
  /** Spatial axes mirrored for 'tta' (the plan's: every spatial axis). */
  mirrorAxes: number[];
  /** For 'tta': each of mirrorAxes mirrored alone, not every combination (the sliding window's mirrorSingleAxes). */
  mirrorSingleAxes?: boolean;
  /** For 'tta': also every mirror with these two spatial axes swapped (2D plans that transpose). */
  transposeAxes?: [number, number];
  /** Probabilities are softmax(logits / temperature) (default 1; a model's calibration.json has its fitted one). */
  temperature?: number;
  /** Dropout samples per network and TTA pass for 'mc-dropout' (default 8). */
  mcSamples?: number;
  /** Seed of the dropout masks (default 0), so a case's uncertainty is reproducible. */
  seed?: number;
  window: Omit<SlidingWindowOptions, 'mirrorAxes' | 'mirrorSingleAxes' | 'transposeAxes' | 'onProgress'>;
  /** Called after each member with (done, total). */
  onMember?: (done: number, total: number) => void;
  /**
   * Called once per network with the maps of that network's own members
   * (disposed after the call): the per-fold view validation scores cases with.
   */
  perNetwork?: (maps: UncertaintyMaps, index: number) => void;
}

/** Networks that keep dropout on at inference (models/encoder-decoder.ts): how many dropout layers they switched. */
interface McDropoutCapable {
  setMcDropout(on: boolean): number;
}

function hasMcDropout(net: unknown): net is McDropoutCapable {
  return typeof (net as Partial<McDropoutCapable>).setMcDropout === 'function';
}

/** Whether a network has dropout layers MC-dropout can keep on (it is left off). */
export function supportsMcDropout(net: unknown): boolean {
  if (!hasMcDropout(net)) return false;
  const n = net.setMcDropout(true);
  net.setMcDropout(false);
  return n > 0;
}

/**
 * Predicts `image` [C, ...spatial] once per member and accumulates the
 * members' softmax probabilities and logits. A mirrored member flips the
 * whole image, runs the sliding window without TTA and flips back; a
 * transposed one swaps two axes of the image and of the patch and swaps
 * back. Tiles and Gaussian weights map onto each other under both, so these
 * are the sliding window's own TTA passes, and the mean logits' argmax is its
 * TTA prediction. The ensemble source uses every network given; without it
 * only the first.
 */
export function predictMembers(nets: SegmentationNetwork[], image: Tensor, o: MemberOptions): UncertaintyMaps {
  const sources = new Set<UncertaintySource>(o.sources ?? ['ensemble', 'tta']);
  for (const s of sources)
    if (!UNCERTAINTY_SOURCES.includes(s)) throw new Error(`unknown uncertainty source '${s}': choose from ${UNCERTAINTY_SOURCES.join(', ')}`);
  const T = o.temperature ?? 1;
  if (!(T > 0 && Number.isFinite(T))) throw new Error(`temperature must be a positive number, got ${T}`);
  const used = sources.has('ensemble') ? nets : nets.slice(0, 1);
  const flips = sources.has('tta') ? mirrorCombos(o.mirrorAxes, o.mirrorSingleAxes) : [[]];
  const swaps = sources.has('tta') && o.transposeAxes ? [false, true] : [false];
  const samples = sources.has('mc-dropout') ? Math.max(1, Math.floor(o.mcSamples ?? 8)) : 1;
  if (sources.has('mc-dropout')) {
    for (const net of used) {
      if (!hasMcDropout(net) || net.setMcDropout(true) === 0) {
        used.forEach((n) => hasMcDropout(n) && n.setMcDropout(false));
        throw new Error('mc-dropout needs a network with dropout layers (hybridnet has them); use the ensemble or tta sources for this model');
      }
    }
    torch.manualSeed(o.seed ?? 0);
  }
  const total = used.length * flips.length * swaps.length * samples;
  const acc = new MemberAccumulator();
  let done = 0;
  try {
    for (const [index, net] of used.entries()) {
      const own = o.perNetwork ? new MemberAccumulator() : null;
      for (const swap of swaps) {
        for (const flip of flips) {
          for (let s = 0; s < samples; s++) {
            torch.tidy(() => {
              const [a, b] = (o.transposeAxes ?? [0, 1]).map((d) => d + 1) as [number, number];
              const dims = flip.map((d) => d + 1);
              let x = dims.length ? image.flip(dims) : image;
              let patchSize = o.window.patchSize;
              if (swap) {
                x = x.transpose(a, b);
                patchSize = [...patchSize];
                [patchSize[a - 1], patchSize[b - 1]] = [patchSize[b - 1]!, patchSize[a - 1]!];
              }
              let logits = slidingWindowLogits(net, x, { ...o.window, patchSize, mirrorAxes: [] });
              if (swap) logits = logits.transpose(a, b);
              if (dims.length) logits = logits.flip(dims);
              logits = logits.contiguous();
              const p = torch.F.softmax(T === 1 ? logits : logits.div(T), 0);
              acc.add(p, logits);
              own?.add(p);
            });
            o.onMember?.(++done, total);
          }
        }
      }
      if (own) {
        const maps = own.finish();
        try {
          o.perNetwork!(maps, index);
        } finally {
          disposeUncertaintyMaps(maps);
        }
      }
    }
  } finally {
    if (sources.has('mc-dropout')) for (const n of used) if (hasMcDropout(n)) n.setMcDropout(false);
  }
  return acc.finish();
}

/** caseScore (infer/case-score.ts) of a case's maps and labels. */
export function caseUncertainty(maps: UncertaintyMaps, labels: Uint8Array | Float32Array | Int32Array, numClasses: number): CaseUncertainty {
  const h = maps.predictiveEntropy.contiguous().toTypedArray() as Float32Array;
  const mi = maps.mutualInformation.contiguous().toTypedArray() as Float32Array;
  return caseScore(h, mi, labels, numClasses, maps.members);
}

/**
 * The case's uncertainty around its own prediction: caseUncertainty over the
 * argmax of the members' mean probabilities. Validation (the triage rule's
 * scores) and prediction (the score compared with it) both score a case with
 * this, from one network's members at the model's temperature.
 */
export function triageScore(maps: UncertaintyMaps, numClasses: number): CaseUncertainty {
  const labels = torch.tidy(() => maps.meanProbabilities.argmax(0).to('uint8').contiguous().toTypedArray() as Uint8Array);
  return caseUncertainty(maps, labels, numClasses);
}
