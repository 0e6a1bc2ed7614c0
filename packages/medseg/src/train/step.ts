/**
 * One training step: forward, the (deep-supervision) loss, backward, gradient
 * clipping, optimizer step. The trainer runs it, the planner's step timer
 * times it and the training-step benches compare it with PyTorch, so what is
 * timed is what training runs.
 *
 * In bf16 only the forward pass runs under autocast (convolutions in
 * bfloat16 on fp32 master weights); the logits are cast to fp32 before the
 * loss, and backward, clipping and the optimizer run in fp32, as
 * torch.autocast training does.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { Precision, TrainingSettings } from '../plan/types.ts';
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
  /** Forward pass arithmetic (default fp32). */
  precision?: Precision;
}

/** The network's outputs, in bf16 mixed precision when asked, always returned as fp32. */
export function forwardIn(precision: Precision | undefined, net: Pick<Trainable, 'forward'>, x: Tensor): Tensor | Tensor[] {
  if (precision !== 'bf16') return net.forward(x);
  const out = torch.autocast({ dtype: 'bfloat16' }, () => net.forward(x));
  const toFp32 = (t: Tensor) => (t.dtype === 'float32' ? t : t.float());
  return Array.isArray(out) ? out.map(toFp32) : toFp32(out);
}

/**
 * The plan's optimizer: SGD with Nesterov momentum, or AdamW. `lrScales`
 * (parameter name -> factor) puts the named parameters into groups at that
 * multiple of the learning rate (the schedules scale every group alike); a
 * factor of 0 freezes them, weight decay included, since both optimizers
 * scale the decay by the learning rate.
 */
export function makeOptimizer(
  net: Pick<Trainable, 'parameters'> & { namedParameters?(): [string, Tensor][] },
  t: Pick<TrainingSettings, 'optimizer' | 'lr' | 'weightDecay' | 'momentum'>,
  lrScales?: Map<string, number>,
): torch.optim.Optimizer {
  let params: Tensor[] | torch.optim.ParamGroup[] = net.parameters();
  if (lrScales && lrScales.size > 0 && net.namedParameters) {
    const byScale = new Map<number, Tensor[]>();
    for (const [name, p] of net.namedParameters()) {
      const scale = lrScales.get(name) ?? 1;
      if (!(scale >= 0 && Number.isFinite(scale))) throw new RangeError(`learning-rate scale of ${name} must be >= 0, got ${scale}`);
      byScale.set(scale, [...(byScale.get(scale) ?? []), p]);
    }
    // Ordered by scale, so a resumed run lists its groups as the checkpoint does.
    params = [...byScale.entries()].sort(([a], [b]) => b - a).map(([scale, ps]) => ({ params: ps, lr: t.lr * scale }));
  }
  if (t.optimizer === 'sgd') return new optim.SGD(params, { lr: t.lr, momentum: t.momentum, nesterov: true, weightDecay: t.weightDecay });
  return new optim.AdamW(params, { lr: t.lr, weightDecay: t.weightDecay });
}

export interface StepExtras {
  /** Runs between backward and clipping (FedProx adds its proximal gradient there, train/proximal.ts). */
  afterBackward?: () => void;
  /** The batch's skeleton-recall targets as the loader made them (else the loss makes them). */
  skeletons?: Tensor;
}

/** Runs one step on a batch and returns the loss before the update. Frees every tensor it makes. */
export function trainingStep(net: Trainable, opt: torch.optim.Optimizer, image: Tensor, label: Tensor, s: StepSettings, extras: StepExtras = {}): number {
  return torch.tidy(() => {
    const loss = deepSupervisionLoss(forwardIn(s.precision, net, image), label, s.loss, extras.skeletons);
    opt.zeroGrad();
    loss.backward();
    extras.afterBackward?.();
    if (s.gradClip > 0) optim.clipGradNorm(net.parameters(), s.gradClip);
    opt.step();
    return loss.item();
  });
}
