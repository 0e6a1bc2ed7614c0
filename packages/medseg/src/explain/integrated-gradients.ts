/**
 * Integrated gradients (Sundararajan et al.): the attribution of input voxel
 * i is (x_i - x'_i) times the mean gradient of the explained score along the
 * straight path from the baseline x' to x, by the midpoint rule with `steps`
 * points. Completeness: the attributions sum to f(x) - f(x') up to the
 * quadrature error, which shrinks as steps grow. The map sums the
 * attributions over input channels; it is signed (evidence for the class is
 * positive).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { forwardLogits, withFrozenParameters } from './layers.ts';
import { targetScores, type ExplainTarget } from './target.ts';
import { MedsegExplainError } from './errors.ts';

export interface IntegratedGradientsOptions {
  target: ExplainTarget;
  /** Path points (default 32). */
  steps?: number;
  /** Baseline value of every voxel (default 0: the mean intensity after z-score normalisation). */
  baseline?: number;
  /** Voxels per batch of path points (default 2^20). */
  maxBatchVoxels?: number;
}

/** Attributions [1, C, ...patch] of one tile x [1, C, ...patch] for the region [...patch]. */
export function integratedGradientsAttributions(net: SegmentationNetwork, x: Tensor, region: Tensor, o: IntegratedGradientsOptions): Tensor {
  const steps = o.steps ?? 32;
  if (!Number.isInteger(steps) || steps < 1)
    throw new MedsegExplainError('BAD_OPTION', `integrated gradients needs a whole number of steps >= 1, got ${steps}`);
  const batch = Math.max(1, Math.floor((o.maxBatchVoxels ?? 2 ** 20) / x.numel));
  return torch.tidy(() => {
    if (region.sum().item() === 0) return torch.zerosLike(x);
    const baseline = torch.fullLike(x, o.baseline ?? 0);
    const delta = x.sub(baseline);
    const total = torch.zerosLike(x);
    for (let k0 = 0; k0 < steps; k0 += batch) {
      torch.tidy(() => {
        const n = Math.min(batch, steps - k0);
        const alphas = torch.tensor(
          Array.from({ length: n }, (_, i) => (k0 + i + 0.5) / steps),
          [n, ...x.shape.slice(1).map(() => 1)],
        );
        const grad = torch.enableGrad(() =>
          withFrozenParameters(net, () => {
            const points = baseline.add(delta.mul(alphas)).detach().requiresGrad_(true);
            targetScores(forwardLogits(net, points), o.target, region).sum().backward();
            return points.grad!;
          }),
        );
        total.add_(grad.sum(0, true));
      });
    }
    return delta.mul(total.div(steps));
  });
}

/** The integrated-gradients map [...patch] of one tile: attributions summed over input channels. */
export function integratedGradientsTile(net: SegmentationNetwork, x: Tensor, region: Tensor, o: IntegratedGradientsOptions): Tensor {
  return torch.tidy(() => integratedGradientsAttributions(net, x, region, o).sum(1).squeeze(0));
}
