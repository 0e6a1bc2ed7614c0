/**
 * Losses of self-supervised pretraining.
 * - NT-Xent (SimCLR, Chen et al. 2020): for 2N embeddings of N pairs of views,
 *   each view's positive is the other view of its image and its negatives the
 *   other 2N - 2 views; the loss is the cross-entropy of the positive among
 *   the cosine similarities / temperature, averaged over all 2N views.
 * - Masked reconstruction: L1 or L2 between the reconstruction and the
 *   original over the masked voxels only (MAE / inpainting), so the visible
 *   voxels, which a network could copy, do not count.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

/** Rows scaled to unit L2 norm. */
function unitRows(z: Tensor): Tensor {
  return z.div(z.square().sum(1, true).add(1e-12).sqrt());
}

/** NT-Xent of two batches of embeddings [N, D] (row i of z1 and of z2 are two views of image i). */
export function ntXentLoss(z1: Tensor, z2: Tensor, temperature = 0.1): Tensor {
  if (z1.shape.join(',') !== z2.shape.join(',') || z1.ndim !== 2)
    throw new RangeError(`NT-Xent wants two [N, D] batches of one shape, got [${z1.shape}] and [${z2.shape}]`);
  const n = z1.shape[0]!;
  if (n < 2) throw new RangeError('NT-Xent needs at least 2 images per batch (the negatives are the other images)');
  const z = unitRows(torch.cat([z1, z2], 0));
  const self = torch.eye(2 * n, { dtype: 'bool' });
  const sim = z.matmul(z.t()).div(temperature).maskedFill(self, -1e9);
  const positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).long();
  return torch.F.crossEntropy(sim, positives);
}

/**
 * Mean L1 or squared error between `pred` and `target` over the voxels where
 * `mask` (broadcast over channels: [B, 1, ...] or the target's shape) is 1.
 */
export function maskedReconstructionLoss(pred: Tensor, target: Tensor, mask: Tensor, kind: 'l1' | 'l2' = 'l2'): Tensor {
  const m = mask.to(pred.dtype).expandAs(pred);
  const diff = pred.sub(target);
  const err = kind === 'l1' ? diff.abs() : diff.square();
  return err.mul(m).sum().div(m.sum().clamp(1));
}
