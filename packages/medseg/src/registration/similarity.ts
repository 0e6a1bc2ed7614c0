/**
 * Image similarity losses for registration, all differentiable and lower is
 * better: global and local (windowed) normalized cross-correlation, and
 * mutual information from a Parzen-window (Gaussian) joint histogram.
 * Images are [N, 1, ...spatial] tensors; MI expects intensities in [0, 1].
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { F } from '@medseg/torch';

export type SimilarityName = 'ncc' | 'lncc' | 'mi';

const EPS = 1e-5;

/** 1 - NCC over the whole image: 0 for images equal up to a positive linear map. */
export function nccLoss(a: Tensor, b: Tensor): Tensor {
  return torch.tidy(() => {
    const da = a.sub(a.mean());
    const db = b.sub(b.mean());
    const cov = da.mul(db).mean();
    const denom = da.square().mean().mul(db.square().mean()).add(EPS).sqrt();
    return cov.div(denom).rsub(1);
  });
}

/**
 * The mean over a cubic window of `window` voxels around every voxel, zeros
 * outside the image: one stride-1 average pool per axis (separable, so it
 * costs 3 window reads per voxel instead of window^3).
 */
export function boxMean(x: Tensor, window: number): Tensor {
  return torch.tidy(() => {
    const spatial = x.ndim - 2;
    const pad = Math.floor(window / 2);
    let out = x;
    for (let axis = 0; axis < spatial; axis++) {
      const kernel = Array.from({ length: spatial }, (_, k) => (k === axis ? window : 1));
      const padding = Array.from({ length: spatial }, (_, k) => (k === axis ? pad : 0));
      out = F.avgPool(out, kernel, { stride: 1, padding, countIncludePad: true });
    }
    return out;
  });
}

/**
 * -mean over voxels of the squared local correlation in a cubic window of
 * `window` voxels (VoxelMorph's LNCC): cov^2 / (var_a var_b + eps), with the
 * window's moments from box means over the zero-padded image.
 */
export function localNccLoss(a: Tensor, b: Tensor, window = 9): Tensor {
  return torch.tidy(() => {
    const mean = (x: Tensor) => boxMean(x, window);
    const ma = mean(a);
    const mb = mean(b);
    const cov = mean(a.mul(b)).sub(ma.mul(mb));
    const va = mean(a.square()).sub(ma.square());
    const vb = mean(b.square()).sub(mb.square());
    return cov.square().div(va.mul(vb).add(EPS)).mean().neg();
  });
}

export interface MutualInformationOptions {
  bins?: number;
  /** Parzen window width in intensity units (default: the bin spacing). */
  sigma?: number;
}

/**
 * -MI(a; b) in nats from a soft joint histogram: each voxel spreads a
 * Gaussian weight over `bins` centres in [0, 1] (normalised per voxel), the
 * joint distribution is the mean outer product of the two weight vectors.
 */
export function mutualInformationLoss(a: Tensor, b: Tensor, o: MutualInformationOptions = {}): Tensor {
  return torch.tidy(() => {
    const bins = o.bins ?? 32;
    const sigma = o.sigma ?? 1 / (bins - 1);
    const centres = torch.linspace(0, 1, bins, { dtype: a.dtype }).reshape([1, bins]);
    const weights = (x: Tensor) => {
      const d = x.reshape([-1, 1]).sub(centres);
      const w = d
        .square()
        .div(-2 * sigma * sigma)
        .exp();
      return w.div(w.sum(1, true).add(1e-10));
    };
    const wa = weights(a);
    const wb = weights(b);
    const joint = wa.t().matmul(wb).div(wa.size(0));
    const pa = joint.sum(1, true);
    const pb = joint.sum(0, true);
    const ratio = joint.add(1e-10).div(pa.matmul(pb).add(1e-10));
    return joint.mul(ratio.log()).sum().neg();
  });
}

export function similarityLoss(name: SimilarityName, a: Tensor, b: Tensor, window = 9): Tensor {
  if (name === 'ncc') return nccLoss(a, b);
  if (name === 'lncc') return localNccLoss(a, b, window);
  return mutualInformationLoss(a, b);
}
