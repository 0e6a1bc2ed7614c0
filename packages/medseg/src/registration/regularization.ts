/**
 * Regularisers and label terms of deformable registration: the diffusion
 * (gradient) penalty on a displacement field and the soft Dice of warped
 * one-hot labels.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

/** Mean squared forward difference of a field [N, C, ...spatial], summed over the spatial axes. */
export function diffusionLoss(u: Tensor): Tensor {
  return torch.tidy(() => {
    let total: Tensor | null = null;
    for (let axis = 2; axis < u.ndim; axis++) {
      const n = u.size(axis);
      if (n < 2) continue;
      const d = u.narrow(axis, 1, n - 1).sub(u.narrow(axis, 0, n - 1));
      const term = d.square().mean();
      total = total ? total.add(term) : term;
    }
    return total ?? torch.scalarTensor(0);
  });
}

/** One-hot float channels [1, K, ...] of a label tensor [1, 1, ...] for labels 1..K (background excluded). */
export function oneHotLabels(labels: Tensor, classes: readonly number[]): Tensor {
  return torch.tidy(() =>
    torch.cat(
      classes.map((c) => labels.eq(c).float()),
      1,
    ),
  );
}

/** 1 - mean soft Dice over the channels of two [N, K, ...] maps. */
export function diceLoss(a: Tensor, b: Tensor): Tensor {
  return torch.tidy(() => {
    const dims = [0, ...Array.from({ length: a.ndim - 2 }, (_, i) => i + 2)];
    const inter = a.mul(b).sum(dims);
    const denom = a.sum(dims).add(b.sum(dims));
    return inter.mul(2).add(1e-5).div(denom.add(1e-5)).mean().rsub(1);
  });
}
