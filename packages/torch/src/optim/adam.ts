/**
 * Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight
 * decay, Loshchilov & Hutter), following torch.optim's single-tensor update.
 */
import { zerosLike } from '../creation.ts';
import type { Tensor } from '../tensor.ts';
import { Optimizer, type ParamGroup } from './optimizer.ts';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

export class Adam extends Optimizer {
  protected readonly decoupled: boolean = false;
  constructor(params: Tensor[] | ParamGroup[], o: AdamOptions = {}, defaultWeightDecay = 0) {
    super(params, {
      lr: o.lr ?? 1e-3,
      betas: o.betas ?? [0.9, 0.999],
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? defaultWeightDecay,
      amsgrad: o.amsgrad ?? false,
    });
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup): void {
    const [b1, b2] = g.betas as [number, number];
    const lr = g.lr;
    const wd = g.weightDecay as number;
    const s = this.stateOf(p);
    const expAvg = this.stateTensor(p, 'exp_avg', () => zerosLike(p));
    const expAvgSq = this.stateTensor(p, 'exp_avg_sq', () => zerosLike(p));
    s.step++;
    let d = grad;
    if (wd !== 0) {
      if (this.decoupled) p.mul_(1 - lr * wd);
      else d = grad.add(p, wd);
    }
    expAvg.lerp_(d, 1 - b1);
    expAvgSq.mul_(b2).addcmul_(d, d, 1 - b2);
    const bc1 = 1 - b1 ** s.step;
    const bc2 = 1 - b2 ** s.step;
    let second = expAvgSq;
    if (g.amsgrad) {
      const maxSq = this.stateTensor(p, 'max_exp_avg_sq', () => zerosLike(p));
      maxSq.copy_(maxSq.maximum(expAvgSq));
      second = maxSq;
    }
    const denom = second
      .sqrt()
      .div_(Math.sqrt(bc2))
      .add_(g.eps as number);
    p.addcdiv_(expAvg, denom, -lr / bc1);
  }
}

export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;
  constructor(params: Tensor[] | ParamGroup[], o: AdamOptions = {}) {
    super(params, o, 0.01);
  }
}
