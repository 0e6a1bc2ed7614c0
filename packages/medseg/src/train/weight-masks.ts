/**
 * Fixed sparsity masks for training a magnitude-pruned network further: the
 * zeros of the named weights when the masks are taken stay zero, because
 * apply() (run after every optimizer step, train() afterStep) sets them back.
 * Resetting after the step, rather than masking the gradients, also undoes
 * what momentum and weight decay move, so the network the trainer validates
 * and saves always has exactly the pruned sparsity.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

export class WeightMasks {
  private readonly entries: { weight: Tensor; zero: Tensor }[];

  /** Masks of the current zeros of the named parameters of `net` (every name must exist). */
  constructor(net: torch.nn.Module, names: readonly string[]) {
    const state = net.stateDict();
    this.entries = names.map((name) => {
      const weight = state.get(name);
      if (!weight) throw new Error(`no parameter ${name} to mask`);
      return { weight, zero: torch.noGrad(() => weight.eq(0)) };
    });
  }

  /** Sets every masked position back to zero. */
  apply(): void {
    torch.noGrad(() => {
      for (const e of this.entries) e.weight.maskedFill_(e.zero, 0);
    });
  }

  /** Masked positions over all masked weights. */
  zeros(): number {
    return this.entries.reduce((a, e) => a + torch.tidy(() => e.zero.sum().item()), 0);
  }

  dispose(): void {
    for (const e of this.entries) e.zero.dispose();
  }
}
