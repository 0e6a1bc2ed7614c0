/**
 * Optimizer base: parameter groups with their own hyperparameters, per-parameter
 * state tensors, and a state dict that checkpoints carry (tensors + JSON).
 */
import { noGrad } from '../autograd.ts';
import { keep, tidy } from '../scope.ts';
import type { Tensor } from '../tensor.ts';

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  [hyper: string]: unknown;
}

export interface OptimizerState {
  /** Per-parameter state tensors, named `<paramIndex>.<key>` (index over all groups in order). */
  tensors: Map<string, Tensor>;
  /** Scalars per parameter and the groups' hyperparameters. */
  meta: { step: Record<string, number>; groups: Record<string, unknown>[] };
}

export abstract class Optimizer {
  readonly groups: ParamGroup[];
  protected readonly state = new Map<Tensor, { step: number; tensors: Map<string, Tensor> }>();

  constructor(params: Tensor[] | ParamGroup[], defaults: Omit<ParamGroup, 'params'>) {
    const grouped = params.length > 0 && 'params' in (params[0] as object);
    const list = grouped ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
    this.groups = list.map((g) => ({ ...defaults, ...g }) as ParamGroup);
    for (const g of this.groups) {
      if (!(g.lr >= 0)) throw new RangeError(`learning rate must be >= 0, got ${g.lr}`);
    }
  }

  /** Current per-parameter state, created on first use. */
  protected stateOf(p: Tensor): { step: number; tensors: Map<string, Tensor> } {
    let s = this.state.get(p);
    if (!s) {
      s = { step: 0, tensors: new Map() };
      this.state.set(p, s);
    }
    return s;
  }

  protected stateTensor(p: Tensor, key: string, init: () => Tensor): Tensor {
    const s = this.stateOf(p);
    let t = s.tensors.get(key);
    if (!t) {
      t = keep(init());
      s.tensors.set(key, t);
    }
    return t;
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const g of this.groups) {
        for (const p of g.params) {
          const grad = p.grad;
          if (!grad) continue;
          try {
            // Temporaries of the update are freed by the scope; state tensors are kept.
            tidy(() => this.update(p, grad, g));
          } finally {
            grad.dispose();
          }
        }
      }
    });
  }

  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup): void;

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad = null;
  }

  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    const step: Record<string, number> = {};
    let i = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s) {
          step[i] = s.step;
          for (const [k, t] of s.tensors) tensors.set(`${i}.${k}`, t);
        }
        i++;
      }
    }
    const groups = this.groups.map(({ params: _p, ...hyper }) => hyper);
    return { tensors, meta: { step, groups } };
  }

  loadStateDict(sd: OptimizerState): void {
    if (sd.meta.groups.length !== this.groups.length) {
      throw new Error(`optimizer state has ${sd.meta.groups.length} parameter groups, this optimizer ${this.groups.length}`);
    }
    sd.meta.groups.forEach((h, gi) => Object.assign(this.groups[gi]!, h));
    let i = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        const step = sd.meta.step[i];
        if (step !== undefined) {
          const s = this.stateOf(p);
          s.step = step;
          for (const [name, t] of sd.tensors) {
            const dot = name.indexOf('.');
            if (name.slice(0, dot) !== String(i)) continue;
            const key = name.slice(dot + 1);
            s.tensors.get(key)?.dispose();
            s.tensors.set(key, keep(t.clone()));
          }
        }
        i++;
      }
    }
  }

  dispose(): void {
    for (const s of this.state.values()) for (const t of s.tensors.values()) t.dispose();
    this.state.clear();
  }
}
