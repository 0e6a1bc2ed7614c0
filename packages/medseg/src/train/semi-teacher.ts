/**
 * The Mean Teacher: a copy of the network whose weights follow the
 * student's as an exponential moving average, teacher <- d * teacher +
 * (1 - d) * student after every optimizer step, for every floating-point
 * parameter and buffer (BatchNorm's running statistics too); integer buffers
 * are copied. The teacher never receives gradients (its parameters do not
 * require them) and predicts in eval mode.
 */
import * as torch from '@medseg/torch';
import type { Tensor, nn } from '@medseg/torch';

export class EmaTeacher<N extends nn.Module> {
  /** @param net a network of the student's architecture; it starts as a copy of the student. */
  constructor(
    readonly net: N,
    student: nn.Module,
  ) {
    net.loadStateDict(student.stateDict());
    for (const p of net.parameters()) p.requiresGrad_(false);
    net.eval();
  }

  /** teacher <- decay * teacher + (1 - decay) * student. */
  update(student: nn.Module, decay: number): void {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`EMA decay must be in [0, 1], got ${decay}`);
    const src = student.stateDict();
    torch.noGrad(() =>
      torch.tidy(() => {
        for (const [name, t] of this.net.stateDict()) {
          const s = src.get(name);
          if (!s) throw new Error(`EMA teacher: the student has no ${name}`);
          if (t.dtype === 'float32' || t.dtype === 'float64') t.mul_(decay).add_(s.mul(1 - decay));
          else t.copy_(s);
        }
      }),
    );
  }

  /** The teacher's weights under `prefix` (saved in checkpoints for an exact resume). */
  tensors(prefix: string): Map<string, Tensor> {
    return new Map([...this.net.stateDict()].map(([k, t]) => [prefix + k, t]));
  }

  /** Restores the weights `tensors(prefix)` saved. */
  restore(saved: Map<string, Tensor>, prefix: string): void {
    const own = new Map<string, Tensor>();
    for (const [k, t] of saved) if (k.startsWith(prefix)) own.set(k.slice(prefix.length), t);
    if (own.size) this.net.loadStateDict(own);
  }

  dispose(): void {
    this.net.dispose();
  }
}
