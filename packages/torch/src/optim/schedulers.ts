/**
 * Learning-rate schedules. Each sets the optimizer groups' lr from the step
 * (or epoch) count and can be checkpointed with stateDict().
 */
import type { Optimizer } from './optimizer.ts';

export abstract class LRScheduler {
  readonly baseLrs: number[];
  stepCount = 0;
  constructor(readonly optimizer: Optimizer) {
    this.baseLrs = optimizer.groups.map((g) => g.lr);
    // Subclasses call apply() at the end of their constructors: their own
    // fields are not yet set while this base constructor runs.
  }
  /** The lr of group i after `t` steps. */
  protected abstract lrAt(t: number, base: number): number;
  step(): void {
    this.stepCount++;
    this.apply();
  }
  protected apply(): void {
    this.optimizer.groups.forEach((g, i) => (g.lr = this.lrAt(this.stepCount, this.baseLrs[i]!)));
  }
  get lr(): number[] {
    return this.optimizer.groups.map((g) => g.lr);
  }
  stateDict(): Record<string, unknown> {
    return { stepCount: this.stepCount };
  }
  loadStateDict(s: Record<string, unknown>): void {
    this.stepCount = Number(s.stepCount ?? 0);
    this.apply();
  }
}

/** lr * gamma ^ floor(t / stepSize) */
export class StepLR extends LRScheduler {
  constructor(
    opt: Optimizer,
    readonly stepSize: number,
    readonly gamma = 0.1,
  ) {
    super(opt);
    this.apply();
  }
  protected lrAt(t: number, base: number): number {
    return base * this.gamma ** Math.floor(t / this.stepSize);
  }
}

/** nnU-Net's polynomial decay: lr * (1 - t / total) ^ exponent. */
export class PolyLR extends LRScheduler {
  constructor(
    opt: Optimizer,
    readonly totalSteps: number,
    readonly exponent = 0.9,
  ) {
    super(opt);
    this.apply();
  }
  protected lrAt(t: number, base: number): number {
    return base * Math.max(0, 1 - Math.min(t, this.totalSteps) / this.totalSteps) ** this.exponent;
  }
}

/** Linear warm-up from 0 over warmupSteps, then cosine decay to minLr at totalSteps. */
export class CosineWarmupLR extends LRScheduler {
  constructor(
    opt: Optimizer,
    readonly warmupSteps: number,
    readonly totalSteps: number,
    readonly minLr = 0,
  ) {
    super(opt);
    this.apply();
  }
  protected lrAt(t: number, base: number): number {
    if (t < this.warmupSteps) return (base * (t + 1)) / (this.warmupSteps + 1);
    const span = Math.max(1, this.totalSteps - this.warmupSteps);
    const progress = Math.min(1, (t - this.warmupSteps) / span);
    return this.minLr + 0.5 * (base - this.minLr) * (1 + Math.cos(Math.PI * progress));
  }
}

/**
 * Cuts lr by `factor` when a metric stops improving for `patience` steps, as
 * torch.optim.lr_scheduler.ReduceLROnPlateau (relative threshold mode).
 */
export class ReduceLROnPlateau {
  best: number;
  badSteps = 0;
  cooldownLeft = 0;
  constructor(
    readonly optimizer: Optimizer,
    readonly o: { mode?: 'min' | 'max'; factor?: number; patience?: number; threshold?: number; cooldown?: number; minLr?: number } = {},
  ) {
    this.best = (o.mode ?? 'min') === 'min' ? Infinity : -Infinity;
  }
  private better(v: number): boolean {
    const th = this.o.threshold ?? 1e-4;
    return (this.o.mode ?? 'min') === 'min' ? v < this.best * (1 - th) : v > this.best * (1 + th);
  }
  step(metric: number): void {
    if (this.better(metric)) {
      this.best = metric;
      this.badSteps = 0;
    } else {
      this.badSteps++;
    }
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.badSteps = 0;
    }
    if (this.badSteps > (this.o.patience ?? 10)) {
      for (const g of this.optimizer.groups) {
        const next = Math.max(g.lr * (this.o.factor ?? 0.1), this.o.minLr ?? 0);
        if (g.lr - next > 1e-8) g.lr = next;
      }
      this.cooldownLeft = this.o.cooldown ?? 0;
      this.badSteps = 0;
    }
  }
  get lr(): number[] {
    return this.optimizer.groups.map((g) => g.lr);
  }
  stateDict(): Record<string, unknown> {
    return { best: this.best, badSteps: this.badSteps, cooldownLeft: this.cooldownLeft, lrs: this.lr };
  }
  loadStateDict(s: Record<string, unknown>): void {
    // JSON turns ±Infinity into null: that means no best value yet.
    this.best = s.best === null || s.best === undefined ? ((this.o.mode ?? 'min') === 'min' ? Infinity : -Infinity) : Number(s.best);
    this.badSteps = Number(s.badSteps);
    this.cooldownLeft = Number(s.cooldownLeft);
    (s.lrs as number[]).forEach((lr, i) => (this.optimizer.groups[i]!.lr = lr));
  }
}
