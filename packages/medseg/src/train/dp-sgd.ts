/**
 * One differentially private training step (DP-SGD, Abadi et al. 2016): each
 * example's gradient is computed on its own and clipped to L2 norm at most
 * C, the clipped gradients are summed, Gaussian noise of standard deviation
 * sigma * C is added to every coordinate, and the optimizer steps with the
 * sum divided by the batch size. The privacy spent is accounted by
 * train/privacy-accountant.ts with the sampling rate batch / cases.
 *
 * Per-example gradients come from one backward pass per example (libtorch
 * has no vectorised per-sample gradients for arbitrary modules): a step
 * costs about batch-size times a plain step's backward. The networks must
 * not mix examples in the forward pass: instance and group norms are fine,
 * batch norm is not (nnU-Net's networks use instance norm). The loss is the
 * plan's loss of each example on its own (batch Dice is per example here).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { deepSupervisionLoss } from './losses.ts';
import { forwardIn, type StepSettings, type Trainable } from './step.ts';

export interface DpSettings {
  /** L2 norm every example's gradient is clipped to. */
  clipNorm: number;
  /** Noise standard deviation as a multiple of clipNorm. */
  noiseMultiplier: number;
}

export interface DpStepResult {
  /** Mean loss of the examples before the update. */
  loss: number;
  /** Examples whose gradient norm exceeded clipNorm. */
  clipped: number;
  /** Each example's gradient norm before clipping. */
  norms: number[];
}

function checkDp(dp: DpSettings): void {
  if (!(dp.clipNorm > 0 && Number.isFinite(dp.clipNorm))) throw new RangeError(`the DP clipping norm must be a finite number > 0, not ${dp.clipNorm}`);
  if (!(dp.noiseMultiplier >= 0 && Number.isFinite(dp.noiseMultiplier)))
    throw new RangeError(`the DP noise multiplier must be a finite number >= 0, not ${dp.noiseMultiplier}`);
}

/**
 * Runs one DP-SGD step on a batch [B, ...]. Frees every tensor it makes; the
 * noise comes from libtorch's seeded generator. `beforeStep` runs on the
 * noisy mean gradient before the optimizer steps (FedProx's proximal
 * gradient, which depends on the weights only, so the privacy is unchanged).
 */
export function dpTrainingStep(
  net: Trainable,
  opt: torch.optim.Optimizer,
  image: Tensor,
  label: Tensor,
  s: StepSettings,
  dp: DpSettings,
  beforeStep?: () => void,
): DpStepResult {
  checkDp(dp);
  const params = net.parameters().filter((p) => p.requiresGrad);
  const B = image.shape[0]!;
  return torch.tidy(() => {
    const sums = torch.noGrad(() => params.map((p) => torch.zerosLike(p)));
    const norms: number[] = [];
    let lossSum = 0;
    for (let b = 0; b < B; b++) {
      torch.tidy(() => {
        const loss = deepSupervisionLoss(forwardIn(s.precision, net, image.narrow(0, b, 1)), label.narrow(0, b, 1), s.loss);
        opt.zeroGrad();
        loss.backward();
        lossSum += loss.item();
        torch.noGrad(() => {
          const grads = params.map((p) => p.grad ?? torch.zerosLike(p));
          const norm = Math.sqrt(grads.reduce((acc, g) => acc + g.pow(2).sum().item(), 0));
          norms.push(norm);
          const scale = Math.min(1, dp.clipNorm / (norm + 1e-6));
          grads.forEach((g, k) => sums[k]!.add_(g.mul(scale)));
        });
      });
    }
    torch.noGrad(() => {
      params.forEach((p, k) => {
        const noisy = dp.noiseMultiplier > 0 ? sums[k]!.add(torch.randn(p.shape).mul(dp.noiseMultiplier * dp.clipNorm)) : sums[k]!;
        p.grad = noisy.div(B);
      });
    });
    beforeStep?.();
    opt.step();
    return { loss: lossSum / B, clipped: norms.filter((n) => n > dp.clipNorm).length, norms };
  });
}
