/** SGD with momentum, dampening, Nesterov and L2 weight decay, as torch.optim.SGD. */
import type { Tensor } from '../tensor.ts';
import { Optimizer, type ParamGroup } from './optimizer.ts';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  constructor(params: Tensor[] | ParamGroup[], o: SGDOptions) {
    super(params, { lr: o.lr, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, weightDecay: o.weightDecay ?? 0, nesterov: o.nesterov ?? false });
    if (o.nesterov && (!(o.momentum && o.momentum > 0) || (o.dampening ?? 0) !== 0)) {
      throw new Error('Nesterov momentum requires momentum > 0 and zero dampening');
    }
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup): void {
    const momentum = g.momentum as number;
    const wd = g.weightDecay as number;
    let d = wd !== 0 ? grad.add(p, wd) : grad;
    if (momentum !== 0) {
      const s = this.stateOf(p);
      const fresh = !s.tensors.has('momentum_buffer');
      const buf = this.stateTensor(p, 'momentum_buffer', () => d.clone());
      if (!fresh) buf.mul_(momentum).add_(d, 1 - (g.dampening as number));
      s.step++;
      d = g.nesterov ? d.add(buf, momentum) : buf;
    }
    p.add_(d, -g.lr);
  }
}
