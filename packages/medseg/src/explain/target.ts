/**
 * What an explanation explains. For segmentation that is not a whole-image
 * class score but the evidence for one class over a region: the sum of the
 * class's logit (or softmax probability) over the voxels of the predicted
 * mask of that class, or of a box. Every method here (Grad-CAM, Grad-CAM++,
 * occlusion, integrated gradients, the deletion curve) scores that quantity.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { MedsegExplainError } from './errors.ts';

export type TargetKind = 'logit' | 'probability';

export interface ExplainTarget {
  /** The class explained (0 is the background). */
  classIndex: number;
  /** Sum of the class logit (default) or of its softmax probability over the region. */
  kind?: TargetKind;
}

/**
 * The explained score of each batch item: sum over the region of the class's
 * logit or probability. logits [N, K, ...S]; region [...S] or [N, ...S] (0/1
 * weights, broadcast over the batch). Returns [N].
 */
export function targetScores(logits: Tensor, target: ExplainTarget, region: Tensor): Tensor {
  const K = logits.size(1);
  if (!Number.isInteger(target.classIndex) || target.classIndex < 0 || target.classIndex >= K) {
    throw new MedsegExplainError('BAD_OPTION', `class ${target.classIndex} is not one of the network's classes 0..${K - 1}`);
  }
  return torch.tidy(() => {
    const per = target.kind === 'probability' ? torch.F.softmax(logits, 1) : logits;
    const c = per.select(1, target.classIndex); // [N, ...S]
    const weighted = c.mul(region.ndim === c.ndim ? region : region.unsqueeze(0));
    return weighted.flatten(1).sum(1);
  });
}

/** An axis-aligned box on the network's grid: start inclusive, end exclusive, per spatial axis (z, y, x in 3D; y, x in 2D). */
export interface Box {
  start: number[];
  end: number[];
}

/** A 0/1 float mask [...spatial] of a box (clipped to the grid); an empty or misshapen box is an error. */
export function boxMask(spatial: number[], box: Box): Tensor {
  if (box.start.length !== spatial.length || box.end.length !== spatial.length) {
    throw new MedsegExplainError('BAD_OPTION', `a box needs ${spatial.length} start and end coordinates, got [${box.start}] .. [${box.end}]`);
  }
  const lo = box.start.map((s, i) => Math.max(0, Math.min(spatial[i]!, Math.round(s))));
  const hi = box.end.map((e, i) => Math.max(0, Math.min(spatial[i]!, Math.round(e))));
  if (lo.some((l, i) => l >= hi[i]!))
    throw new MedsegExplainError('BAD_OPTION', `the box [${box.start}] .. [${box.end}] holds no voxel of the grid [${spatial}]`);
  return torch.tidy(() => {
    const m = torch.zeros(spatial);
    let view = m;
    lo.forEach((l, i) => (view = view.narrow(i, l, hi[i]! - l)));
    view.fill_(1);
    return m;
  });
}

/** The predicted mask of a class from logits [K, ...S]: a 0/1 float [...S]. */
export function predictedMask(logits: Tensor, classIndex: number): Tensor {
  return torch.tidy(() => logits.argmax(0).eq(classIndex).float());
}
