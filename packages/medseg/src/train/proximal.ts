/**
 * FedProx's proximal term (Li et al. 2020): a site trains on its loss plus
 * (mu / 2) * ||w - w_global||^2, which keeps its weights near the round's
 * global model when the sites' data differ. Its gradient, mu * (w - w_global),
 * is added to each parameter's gradient after backward and before clipping
 * and the optimizer step.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

export class ProximalTerm {
  private readonly anchors: Tensor[];

  /** Copies `params`' current values (the round's global weights) as the anchor. */
  constructor(
    private readonly params: Tensor[],
    readonly mu: number,
  ) {
    if (!(mu >= 0 && Number.isFinite(mu))) throw new RangeError(`FedProx mu must be a finite number >= 0, not ${mu}`);
    this.anchors = torch.noGrad(() => params.map((p) => p.detach().clone().keep()));
  }

  /** (mu / 2) * ||w - w_global||^2 at the current weights. */
  value(): number {
    return torch.tidy(() => (this.mu / 2) * this.params.reduce((s, p, k) => s + p.detach().sub(this.anchors[k]!).pow(2).sum().item(), 0));
  }

  /** Adds mu * (w - w_global) to every parameter's gradient (parameters without one get it as their gradient). */
  addGradient(): void {
    if (this.mu === 0) return;
    torch.tidy(() =>
      torch.noGrad(() => {
        this.params.forEach((p, k) => {
          const g = p.detach().sub(this.anchors[k]!).mul(this.mu);
          const current = p.grad;
          if (current) current.add_(g);
          else p.grad = g;
        });
      }),
    );
  }

  dispose(): void {
    for (const a of this.anchors) a.dispose();
  }
}
