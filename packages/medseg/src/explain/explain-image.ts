/**
 * One explanation of one image on the network's grid: the target region
 * (the class's predicted mask by default, or a box), the method's map
 * stitched over the sliding window, for any of the methods.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { slidingWindowLogits } from '../infer/sliding-window.ts';
import { attentionMapNames, attentionMapsTile } from './attention.ts';
import { gradCamTile } from './gradcam.ts';
import { integratedGradientsTile } from './integrated-gradients.ts';
import { defaultLayer } from './layers.ts';
import { occlusionDefaults, occlusionTile } from './occlusion.ts';
import { stitchedMap } from './stitch.ts';
import { predictedMask, type ExplainTarget } from './target.ts';
import { MedsegExplainError } from './errors.ts';

export const EXPLAIN_METHODS = ['gradcam', 'gradcampp', 'attention', 'occlusion', 'ig'] as const;
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number];

export function isExplainMethod(s: string): s is ExplainMethod {
  return (EXPLAIN_METHODS as readonly string[]).includes(s);
}

export interface ExplainImageOptions {
  method: ExplainMethod;
  target: ExplainTarget;
  patchSize: number[];
  stepFraction?: number;
  /** Grad-CAM layer (default defaultLayer(net)). */
  layer?: string;
  /** Occlusion window and stride per axis (default occlusionDefaults(patch)). */
  window?: number[];
  stride?: number[];
  /** Integrated-gradients path points. */
  steps?: number;
  /** Baseline intensity of occlusion and integrated gradients (default 0, the normalised mean). */
  baseline?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ImageExplanation {
  /** Maps [...S] by name; the method's map is maps.get(primary). */
  maps: Map<string, Tensor>;
  primary: string;
  /** The layer Grad-CAM looked at, the occlusion window, ...: what the JSON reports. */
  settings: Record<string, unknown>;
}

/** The target region [...S]: the class's predicted mask, from the logits [K, ...S] of the same image. */
export function defaultRegion(logits: Tensor, classIndex: number): Tensor {
  return predictedMask(logits, classIndex);
}

/** The network's logits [K, ...S] over the image, one pass per tile (no test-time augmentation: the explained passes have none either). */
export function plainLogits(net: SegmentationNetwork, image: Tensor, o: { patchSize: number[]; stepFraction?: number }): Tensor {
  return slidingWindowLogits(net, image, { patchSize: o.patchSize, stepFraction: o.stepFraction, mirrorAxes: [] });
}

/** Explains image [C, ...S] for the region [...S] with the chosen method. */
export function explainImage(net: SegmentationNetwork, image: Tensor, region: Tensor, o: ExplainImageOptions): ImageExplanation {
  const stitch = { patchSize: o.patchSize, stepFraction: o.stepFraction, onProgress: o.onProgress };
  const one = (name: string, settings: Record<string, unknown>, perTile: (x: Tensor, r: Tensor) => Tensor): ImageExplanation => {
    const map = torch.tidy(() => stitchedMap(image, region, stitch, perTile).squeeze(0));
    return { maps: new Map([[name, map]]), primary: name, settings };
  };
  switch (o.method) {
    case 'gradcam':
    case 'gradcampp': {
      const layer = o.layer ?? defaultLayer(net);
      const plusPlus = o.method === 'gradcampp';
      return one(o.method, { layer }, (x, r) => gradCamTile(net, x, r, { layer, target: o.target, plusPlus }));
    }
    case 'occlusion': {
      const d = occlusionDefaults(o.patchSize);
      const window = o.window ?? d.window;
      const stride = o.stride ?? window.map((w) => Math.max(1, Math.ceil(w / 2)));
      const baseline = o.baseline ?? 0;
      return one('occlusion', { window, stride, baseline }, (x, r) => occlusionTile(net, x, r, { target: o.target, window, stride, baseline }));
    }
    case 'ig': {
      const steps = o.steps ?? 32;
      const baseline = o.baseline ?? 0;
      return one('ig', { steps, baseline }, (x, r) => integratedGradientsTile(net, x, r, { target: o.target, steps, baseline }));
    }
    case 'attention': {
      const names = attentionMapNames(net, o.patchSize);
      if (names.length === 0) {
        throw new MedsegExplainError(
          'NOT_SUPPORTED',
          `${net.config.architecture} has no attention to show: use transunet, swin-unetr, hybridnet or attention-unet, or another method (gradcam, occlusion, ig)`,
        );
      }
      const stacked = torch.tidy(() =>
        stitchedMap(image, region, stitch, (x, r) => {
          const maps = attentionMapsTile(net, x, r);
          return torch.stack(
            names.map((n) => maps.get(n) ?? torch.zeros(o.patchSize)),
            0,
          );
        }),
      );
      const maps = new Map(names.map((n, i) => [n, stacked.select(0, i).contiguous()] as const));
      stacked.dispose();
      // The rollout of the finest token grid leads; a network with gates only leads with the finest gate.
      const primary = names.filter((n) => n.startsWith('rollout.'))[0] ?? names.filter((n) => n.startsWith('attention.gate')).at(-1) ?? names[0]!;
      return { maps, primary, settings: { maps: names } };
    }
  }
}
