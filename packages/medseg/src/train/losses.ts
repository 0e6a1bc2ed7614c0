/**
 * Segmentation losses on logits [N, C, ...spatial] and integer labels
 * [N, ...spatial] (or [N, 1, ...spatial]).
 *
 * - Soft Dice as nnU-Net computes it: softmax probabilities, per-class
 *   (2 * TP + smooth) / (2 * TP + FP + FN + smooth) with smooth = 1e-5, summed
 *   over the batch too when batchDice, background excluded by default.
 * - Dice + cross-entropy (nnU-Net's default) and Dice + focal (focal loss of
 *   Lin et al. with gamma = 2).
 * - Skeleton recall (Kirchhoff et al., ECCV 2024), an optional extra term for
 *   thin structures in 2D: 1 - the share of each class's tubed skeleton
 *   (skeleton.ts) the softmax covers, pooled over the batch, averaged over
 *   the foreground classes.
 * - Deep supervision: the losses of the heads weighted 1, 1/2, 1/4, ...
 *   normalised to sum 1, with the lowest-resolution head weighted 0 as nnU-Net.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { tubedSkeletons } from '../data/skeleton.ts';

const { F } = torch;

export interface DiceOptions {
  /** Include the background class in the Dice term (nnU-Net: no). */
  includeBackground?: boolean;
  /** Pool statistics over the batch before the ratio (nnU-Net: for 3D full-res, yes). */
  batchDice?: boolean;
  smooth?: number;
}

function labelsOf(target: Tensor): Tensor {
  const t = target.ndim > 1 && target.size(1) === 1 ? target.squeeze(1) : target;
  return t.dtype === 'int64' ? t : t.long();
}

/** 1 - mean soft Dice over the classes. */
export function softDiceLoss(logits: Tensor, target: Tensor, o: DiceOptions = {}): Tensor {
  return torch.tidy(() => {
    const C = logits.size(1);
    const probs = F.softmax(logits, 1);
    const labels = labelsOf(target);
    const oneHot = torch.oneHot(labels, C).to(probs.dtype);
    // one_hot puts classes last: [N, ...spatial, C] -> [N, C, ...spatial]
    const dims = oneHot.ndim;
    const perm = [0, dims - 1, ...Array.from({ length: dims - 2 }, (_, i) => i + 1)];
    const y = oneHot.permute(perm);
    const spatial = Array.from({ length: logits.ndim - 2 }, (_, i) => i + 2);
    const axes = o.batchDice ? [0, ...spatial] : spatial;
    const tp = probs.mul(y).sum(axes);
    const sumP = probs.sum(axes);
    const sumY = y.sum(axes);
    const smooth = o.smooth ?? 1e-5;
    // 2TP + FP + FN = sum(p) + sum(y)
    let dice = tp.mul(2).add(smooth).div(sumP.add(sumY).add(smooth));
    if (!(o.includeBackground ?? false) && C > 1) dice = dice.narrow(-1, 1, C - 1);
    return dice.mean().rsub(1);
  });
}

/** Multi-class focal loss: mean of -(1 - p_t)^gamma * log p_t, optionally class-weighted. */
export function focalLoss(logits: Tensor, target: Tensor, o: { gamma?: number; alpha?: Tensor | null } = {}): Tensor {
  return torch.tidy(() => {
    const gamma = o.gamma ?? 2;
    const labels = labelsOf(target);
    const logp = F.logSoftmax(logits, 1);
    const logpt = logp.gather(1, labels.unsqueeze(1)).squeeze(1);
    const pt = logpt.exp();
    let loss = pt.rsub(1).pow(gamma).mul(logpt).neg();
    if (o.alpha) loss = loss.mul(o.alpha.indexSelect(0, labels.flatten()).reshape(labels.shape));
    return loss.mean();
  });
}

/**
 * 1 - mean over the foreground classes of (sum p_k s_k + smooth) / (sum s_k + smooth),
 * sums over the batch and space; `skeleton` is one-hot [N, C, ...spatial] (tubedSkeletons).
 */
export function skeletonRecallLoss(logits: Tensor, skeleton: Tensor, smooth = 1e-5): Tensor {
  return torch.tidy(() => {
    const C = logits.size(1);
    const probs = F.softmax(logits, 1);
    const axes = [0, ...Array.from({ length: logits.ndim - 2 }, (_, i) => i + 2)];
    const s = skeleton.to(probs.dtype);
    const recall = probs.mul(s).sum(axes).add(smooth).div(s.sum(axes).add(smooth));
    return recall
      .narrow(0, 1, C - 1)
      .mean()
      .rsub(1);
  });
}

/** The skeleton-recall targets of a 2D batch's labels [N, H, W] or [N, 1, H, W], as a one-hot float tensor [N, C, H, W]. */
export function skeletonTargets(target: Tensor, numClasses: number): Tensor {
  return torch.tidy(() => {
    const labels = labelsOf(target);
    if (labels.ndim !== 3) throw new Error(`skeleton recall takes 2D label maps [N, H, W], got shape [${labels.shape}]`);
    const [n, h, w] = labels.shape as [number, number, number];
    return torch.tensor(tubedSkeletons(labels.float().toFloat32Array(), [n, h, w], numClasses), [n, numClasses, h, w]).float();
  });
}

export type LossName = 'dice_ce' | 'dice_focal' | 'ce' | 'dice';

export interface LossOptions extends DiceOptions {
  name: LossName;
  /** Weight of the Dice term and of the CE/focal term. */
  weightDice?: number;
  weightOther?: number;
  focalGamma?: number;
  /** Weight of the skeleton-recall term (2D only; absent or 0: none). */
  skeletonRecall?: number;
}

/** The compound loss for one output head; `skeleton` (skeletonTargets, on the head's grid) when o.skeletonRecall > 0. */
export function segmentationLoss(logits: Tensor, target: Tensor, o: LossOptions, skeleton?: Tensor): Tensor {
  if (o.skeletonRecall && !skeleton) throw new Error('the skeleton-recall term needs the skeleton targets');
  return torch.tidy(() => {
    const base = compoundLoss(logits, target, o);
    return o.skeletonRecall ? base.add(skeletonRecallLoss(logits, skeleton!).mul(o.skeletonRecall)) : base;
  });
}

function compoundLoss(logits: Tensor, target: Tensor, o: LossOptions): Tensor {
  return torch.tidy(() => {
    const wd = o.weightDice ?? 1;
    const wo = o.weightOther ?? 1;
    switch (o.name) {
      case 'dice':
        return softDiceLoss(logits, target, o);
      case 'ce':
        return F.crossEntropy(logits, labelsOf(target));
      case 'dice_ce':
        return softDiceLoss(logits, target, o)
          .mul(wd)
          .add(F.crossEntropy(logits, labelsOf(target)).mul(wo));
      case 'dice_focal':
        return softDiceLoss(logits, target, o)
          .mul(wd)
          .add(focalLoss(logits, target, { gamma: o.focalGamma ?? 2 }).mul(wo));
    }
  });
}

/** nnU-Net's deep-supervision weights: 1/2^i, the last (coarsest) 0, normalised. */
export function deepSupervisionWeights(heads: number): number[] {
  const w = Array.from({ length: heads }, (_, i) => 1 / 2 ** i);
  if (heads > 1) w[heads - 1] = 0;
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

/**
 * Loss over deep-supervision heads: each head's target is the label map
 * downsampled (nearest) to the head's size. With the skeleton-recall term,
 * `skeletons` are the batch's targets as the loader made them (float
 * one-hot [N, C, H, W]); without them they are made here from the labels.
 */
export function deepSupervisionLoss(outputs: Tensor | Tensor[], target: Tensor, o: LossOptions, skeletons?: Tensor): Tensor {
  return torch.tidy(() => {
    const heads = Array.isArray(outputs) ? outputs : [outputs];
    // The skeletons of the full-resolution labels, moved to each head's grid like the labels (nearest), as nnU-Net's Skeleton Recall.
    const skeleton = o.skeletonRecall ? (skeletons ?? skeletonTargets(target, heads[0]!.size(1))) : undefined;
    if (!Array.isArray(outputs)) return segmentationLoss(outputs, target, o, skeleton);
    const weights = deepSupervisionWeights(outputs.length);
    const t = target.ndim === outputs[0]!.ndim ? target : target.unsqueeze(1);
    let total: Tensor | null = null;
    outputs.forEach((out, i) => {
      if (weights[i] === 0) return;
      const size = out.shape.slice(2);
      const full = size.join(',') === t.shape.slice(2).join(',');
      const ti = full ? t : F.interpolate(t.float(), { size, mode: 'nearest' }).long();
      const si = skeleton && (full ? skeleton : F.interpolate(skeleton, { size, mode: 'nearest' }));
      const l = segmentationLoss(out, ti, o, si).mul(weights[i]!);
      total = total ? total.add(l) : l;
    });
    return total!;
  });
}
