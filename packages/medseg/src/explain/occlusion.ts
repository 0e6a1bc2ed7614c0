/**
 * Occlusion sensitivity (Zeiler & Fergus), model-agnostic: a window of the
 * tile is set to a baseline value, and the drop of the explained score (the
 * class's logit or probability summed over the region) is credited to the
 * window's voxels; a voxel's value is the mean drop over every window that
 * covers it. Windows slide with a stride, the last one flush with the tile's
 * end, and run through the network in batches.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { forwardLogits } from './layers.ts';
import { targetScores, type ExplainTarget } from './target.ts';
import { MedsegExplainError } from './errors.ts';

export interface OcclusionOptions {
  target: ExplainTarget;
  /** Window size per spatial axis (default occlusionDefaults(patch).window). */
  window?: number[];
  /** Step per axis (default half the window). */
  stride?: number[];
  /** Value the occluded voxels take (default 0: the mean intensity after z-score normalisation). */
  baseline?: number;
  /** Voxels per batch of occluded copies (default 2^20). */
  maxBatchVoxels?: number;
}

/** The window and stride derived from the plan's patch: a quarter of the patch per axis (at least 1), stride half of that. */
export function occlusionDefaults(patch: number[]): { window: number[]; stride: number[] } {
  const window = patch.map((p) => Math.max(1, Math.ceil(p / 4)));
  return { window, stride: window.map((w) => Math.max(1, Math.ceil(w / 2))) };
}

/** Window starts along one axis: 0, stride, ..., and one flush with the end. */
export function windowStarts(size: number, window: number, stride: number): number[] {
  if (window >= size) return [0];
  const out: number[] = [];
  for (let s = 0; s + window < size; s += stride) out.push(s);
  out.push(size - window);
  return out;
}

/** Occlusion map [...patch] of one tile x [1, C, ...patch] for the region [...patch] (zeros where the tile holds none of the region). */
export function occlusionTile(net: SegmentationNetwork, x: Tensor, region: Tensor, o: OcclusionOptions): Tensor {
  const patch = x.shape.slice(2);
  const defaults = occlusionDefaults(patch);
  const window = (o.window ?? defaults.window).map((w, i) => Math.min(w, patch[i]!));
  const stride = o.stride ?? window.map((w) => Math.max(1, Math.ceil(w / 2)));
  if (window.length !== patch.length || stride.length !== patch.length || [...window, ...stride].some((v) => !Number.isInteger(v) || v < 1)) {
    throw new MedsegExplainError('BAD_OPTION', `occlusion window [${window}] and stride [${stride}] must be ${patch.length} positive integers`);
  }
  let positions: number[][] = [[]];
  patch.forEach((p, i) => (positions = positions.flatMap((pos) => windowStarts(p, window[i]!, stride[i]!).map((s) => [...pos, s]))));
  const voxels = x.numel;
  const batch = Math.max(1, Math.floor((o.maxBatchVoxels ?? 2 ** 20) / voxels));
  return torch.noGrad(() =>
    torch.tidy(() => {
      if (region.sum().item() === 0) return torch.zeros(patch);
      const base = targetScores(forwardLogits(net, x), o.target, region).item();
      const sum = torch.zeros(patch);
      const count = torch.zeros(patch);
      for (let b = 0; b < positions.length; b += batch) {
        torch.tidy(() => {
          const group = positions.slice(b, b + batch);
          const copies = x.repeat([group.length, ...x.shape.slice(1).map(() => 1)]);
          group.forEach((pos, i) => {
            let view = copies.select(0, i);
            pos.forEach((s, a) => (view = view.narrow(a + 1, s, window[a]!)));
            view.fill_(o.baseline ?? 0);
          });
          const drops = targetScores(forwardLogits(net, copies), o.target, region).toFloat32Array();
          group.forEach((pos, i) => {
            let sv = sum;
            let cv = count;
            pos.forEach((s, a) => {
              sv = sv.narrow(a, s, window[a]!);
              cv = cv.narrow(a, s, window[a]!);
            });
            sv.add_(base - drops[i]!);
            cv.add_(1);
          });
        });
      }
      return sum.div(count.clamp(1, null));
    }),
  );
}
