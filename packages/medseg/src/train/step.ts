/**
 * One training step: forward, the (deep-supervision) loss, backward, gradient
 * clipping, optimizer step. The trainer runs it, the planner's step timer
 * times it and the training-step benches compare it with PyTorch, so what is
 * timed is what training runs.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { TrainingSettings } from '../plan/types.ts';
import { deepSupervisionLoss, type LossOptions } from './losses.ts';

const { optim } = torch;

export interface Trainable {
  parameters(): Tensor[];
  forward(x: Tensor): Tensor | Tensor[];
}

export interface StepSettings {
  loss: LossOptions;
  /** Max gradient norm; 0 disables clipping. */
  gradClip: number;
}

/** The plan's optimizer: SGD with Nesterov momentum, or AdamW. */
export function makeOptimizer(
  net: Pick<Trainable, 'parameters'>,
  t: Pick<TrainingSettings, 'optimizer' | 'lr' | 'weightDecay' | 'momentum'>,
): torch.optim.Optimizer {
  if (t.optimizer === 'sgd') return new optim.SGD(net.parameters(), { lr: t.lr, momentum: t.momentum, nesterov: true, weightDecay: t.weightDecay });
  return new optim.AdamW(net.parameters(), { lr: t.lr, weightDecay: t.weightDecay });
}

/** Runs one step on a batch and returns the loss before the update. Frees every tensor it makes. */
export function trainingStep(net: Trainable, opt: torch.optim.Optimizer, image: Tensor, label: Tensor, s: StepSettings): number {
  return torch.tidy(() => {
    const loss = deepSupervisionLoss(net.forward(image), label, s.loss);
    opt.zeroGrad();
    loss.backward();
    if (s.gradClip > 0) optim.clipGradNorm(net.parameters(), s.gradClip);
    opt.step();
    return loss.item();
  });
}
