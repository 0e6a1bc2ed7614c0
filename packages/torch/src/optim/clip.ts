/** Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_. */
import { noGrad } from '../autograd.ts';
import { stack } from '../creation.ts';
import { tidy } from '../scope.ts';
import type { Tensor } from '../tensor.ts';

/** Scales all gradients so their joint norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return noGrad(() =>
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return 0;
      const total = normType === Infinity ? stack(grads.map((g) => g.abs().max())).max() : stack(grads.map((g) => g.norm(normType))).norm(normType);
      const totalValue = total.item();
      if (!Number.isFinite(totalValue)) return totalValue;
      const coef = maxNorm / (totalValue + 1e-6);
      if (coef < 1) for (const g of grads) g.mul_(coef);
      return totalValue;
    }),
  );
}
