/**
 * Weight averaging at the end of training (Izmailov et al., "Averaging
 * Weights Leads to Wider Optima", 2018): the running mean of the network's
 * weights at the end of each epoch from a chosen share of the run on. The
 * networks here normalise per instance (no running statistics to
 * recompute), so the averaged weights predict as they are. Integer buffers
 * are taken from the latest epoch.
 */
import * as torch from '@medseg/torch';
import type { Tensor, nn } from '@medseg/torch';

export class WeightAverage {
  private readonly mean = new Map<string, Tensor>();
  /** Epochs averaged so far. */
  count = 0;

  /** Adds the network's current weights: mean <- mean + (w - mean) / (count + 1). */
  add(net: nn.Module): void {
    const n = this.count + 1;
    torch.noGrad(() =>
      torch.tidy(() => {
        for (const [name, t] of net.stateDict()) {
          const m = this.mean.get(name);
          if (!m) this.mean.set(name, torch.keep(t.detach().clone()));
          else if (m.dtype === 'float32' || m.dtype === 'float64') m.add_(t.sub(m).div(n));
          else m.copy_(t);
        }
      }),
    );
    this.count = n;
  }

  /** The averaged weights (owned by this object; valid until dispose). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.mean);
  }

  /** The running mean under `prefix`, for a checkpoint; the checkpoint's state keeps the count (an exact resume). */
  tensors(prefix: string): Map<string, Tensor> {
    return new Map([...this.mean].map(([k, t]) => [prefix + k, t]));
  }

  /** Restores the mean tensors(prefix) saved; the caller sets `count` from the checkpoint's state. */
  restore(saved: Map<string, Tensor>, prefix: string): void {
    this.dispose();
    torch.tidy(() => {
      for (const [k, t] of saved) if (k.startsWith(prefix)) this.mean.set(k.slice(prefix.length), torch.keep(t.clone()));
    });
  }

  /** Whether no weights have been added (or restored). */
  get empty(): boolean {
    return this.mean.size === 0;
  }

  dispose(): void {
    for (const t of this.mean.values()) t.dispose();
    this.mean.clear();
    this.count = 0;
  }
}
