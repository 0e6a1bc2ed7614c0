/**
 * Segmentation Grad-CAM (Selvaraju et al.) and Grad-CAM++ (Chattopadhay et
 * al.) for any network and any named layer whose output is a feature map
 * [1, C, ...s]. The explained score is the sum of one class's logit (or
 * probability) over a region (target.ts), not a whole-image score. Per tile:
 *
 *   Grad-CAM:   w_c = mean_s dS/dA_c(s),          map = relu(sum_c w_c A_c)
 *   Grad-CAM++: a_c(s) = g^2 / (2 g^2 + (sum_s' A_c(s')) g^3)  (g = dS/dA_c(s), a = 0 where g = 0)
 *               w_c = sum_s a_c(s) relu(g),        map = relu(sum_c w_c A_c)
 *
 * (Grad-CAM++'s closed form for an exponential of the score, with the
 * exponential's positive factor dropped as usual.) The map is upsampled
 * (linear) to the tile and the tiles are blended with the Gaussian weighting
 * of prediction (infer/sliding-window.ts).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import { findLayer, forwardCapturing, withFrozenParameters } from './layers.ts';
import { targetScores, type ExplainTarget } from './target.ts';
import { MedsegExplainError } from './errors.ts';
import { cumulativeStrides } from '../models/blocks-network.ts';

export interface GradCamOptions {
  /** Dotted module name (namedModules). */
  layer: string;
  target: ExplainTarget;
  /** Grad-CAM++ weights instead of Grad-CAM's gradient means. */
  plusPlus?: boolean;
}

/** Whether an activation is a channels-first feature map of the tile: its spatial size is the patch divided by one of the network's cumulative strides. */
function isFeatureMapOf(net: SegmentationNetwork, activation: Tensor, patch: number[]): boolean {
  if (activation.ndim !== patch.length + 2) return false;
  const spatial = activation.shape.slice(2);
  const strides = [patch.map(() => 1), ...cumulativeStrides(net.config.strides)];
  return strides.some((s) => spatial.every((n, i) => n * s[i]! === patch[i]!));
}

/** Grad-CAM weights [1, C, 1...] from the activation A and its gradient G (both [1, C, ...s]). */
export function gradCamWeights(activation: Tensor, grad: Tensor, plusPlus: boolean): Tensor {
  return torch.tidy(() => {
    const axes = activation.shape.slice(2).map((_, i) => i + 2);
    if (!plusPlus) return grad.mean(axes, true);
    const g2 = grad.square();
    const g3 = g2.mul(grad);
    const sumA = activation.sum(axes, true);
    const denom = g2.mul(2).add(sumA.mul(g3));
    // alpha = g^2 / denom where g != 0 (and the denominator is not 0), else 0.
    const safe = denom.ne(0).logicalAnd(grad.ne(0));
    const alpha = torch.where(safe, g2.div(torch.where(safe, denom, torch.onesLike(denom))), torch.zerosLike(denom));
    return alpha.mul(grad.relu()).sum(axes, true);
  });
}

/** The class-activation map [1, ...s] of one activation and its gradient: relu(sum_c w_c A_c). */
export function camFromActivation(activation: Tensor, grad: Tensor, plusPlus: boolean): Tensor {
  return torch.tidy(() => gradCamWeights(activation, grad, plusPlus).mul(activation).sum(1).relu());
}

/**
 * Grad-CAM of one tile: x [1, C, ...patch], region [...patch]. Returns the map
 * [...patch] (zeros where the region is empty in this tile: nothing to explain).
 */
export function gradCamTile(net: SegmentationNetwork, x: Tensor, region: Tensor, o: GradCamOptions): Tensor {
  const patch = x.shape.slice(2);
  const layer = findLayer(net, o.layer);
  return torch.tidy(() => {
    if (region.sum().item() === 0) return torch.zeros(patch);
    return torch.enableGrad(() =>
      withFrozenParameters(net, () => {
        const input = x.detach().requiresGrad_(true);
        const { logits, activation } = forwardCapturing(net, layer, o.layer, input);
        try {
          if (!isFeatureMapOf(net, activation, patch)) {
            throw new MedsegExplainError(
              'NO_LAYER',
              `layer '${o.layer}' outputs [${activation.shape}], not a feature map [N, C, ...spatial] on the tile's grid at one of the network's strides (tokens and channels-last maps such as Swin stages do not qualify): choose a convolutional layer, e.g. decoder.0`,
            );
          }
          targetScores(logits, o.target, region).sum().backward();
          const grad = activation.grad;
          if (!grad) throw new MedsegExplainError('NO_LAYER', `layer '${o.layer}' got no gradient: it does not influence the logits`);
          const cam = camFromActivation(activation.detach(), grad, o.plusPlus ?? false); // [1, ...s]
          const same = cam.shape.slice(1).join(',') === patch.join(',');
          return (same ? cam : torch.F.interpolate(cam.unsqueeze(0), { size: patch, mode: 'linear' }).squeeze(0)).squeeze(0);
        } finally {
          activation.dispose();
        }
      }),
    );
  });
}
