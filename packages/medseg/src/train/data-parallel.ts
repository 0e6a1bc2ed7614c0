/**
 * Data-parallel training over a c10d process group (@medseg/torch
 * ProcessGroup): every rank holds the same network, trains on its own share of
 * the batches, and after each backward the gradients are summed across ranks
 * and divided by the world size, so every rank applies the same update.
 *
 * - Identical start: rank 0's parameters and buffers are broadcast to all.
 * - Buckets: the gradients are packed into flat fp32 buckets of about
 *   `bucketMB` (25 by default), in the reverse of the parameter order (about
 *   the order backward produces them), one all-reduce per bucket.
 * - Overlap: a gradient hook on every parameter copies its gradient into its
 *   bucket as backward produces it; a bucket's all-reduce is queued on Gloo's
 *   threads as soon as it and every bucket before it are full, while backward
 *   goes on with the earlier layers. Buckets go in a fixed order, so every
 *   rank issues the same collectives in the same order whatever order the
 *   hooks fire in. A parameter backward did not reach (unused in this
 *   forward) counts as a zero gradient when backward ends.
 *
 * Buffers (batch-norm running statistics) are broadcast once at the start;
 * each rank then updates its own, and rank 0's are the ones saved.
 *
 * The mean of the ranks' gradients equals the gradient of the whole batch
 * when the loss is a mean over the samples (cross-entropy, per-sample Dice);
 * batch Dice pools its statistics per rank, as in any data-parallel
 * training.
 */
import * as torch from '@medseg/torch';
import type { ProcessGroup, Tensor } from '@medseg/torch';
import { deepSupervisionLoss } from './losses.ts';
import { forwardIn, type StepSettings, type Trainable } from './step.ts';

export interface DataParallelOptions {
  /** Bucket size in MB (2^20 bytes) of fp32 gradients; default 25. */
  bucketMB?: number;
  /** Queue each bucket's all-reduce during backward (default true); false reduces every bucket after backward. */
  overlap?: boolean;
}

interface Slot {
  param: Tensor;
  offset: number;
  numel: number;
  shape: number[];
}

interface Bucket {
  flat: Tensor;
  slots: Slot[];
  filled: Set<Slot>;
  work: Promise<void> | null;
}

/** Seconds spent in each phase of the last synchronised step (for benches and logs). */
export interface ReduceTiming {
  /** Waiting for all-reduces still running after backward ended. */
  waitSeconds: number;
  buckets: number;
  /** Buckets whose all-reduce was queued while backward was still running (the overlap). */
  queuedDuringBackward: number;
  bytes: number;
}

/** Every tensor of `ts` takes rank 0's values (one broadcast per dtype, packed flat). */
async function broadcastFromRankZero(group: ProcessGroup, ts: Tensor[]): Promise<void> {
  const byDtype = new Map<string, Tensor[]>();
  for (const t of ts) byDtype.set(t.dtype, [...(byDtype.get(t.dtype) ?? []), t]);
  for (const same of byDtype.values()) {
    const flat = torch.noGrad(() => torch.tidy(() => torch.cat(same.map((t) => t.detach().reshape([-1]))).keep()));
    try {
      await group.broadcast([flat], 0);
      torch.noGrad(() =>
        torch.tidy(() => {
          let offset = 0;
          for (const t of same) {
            t.copy_(flat.narrow(0, offset, t.numel).view(t.shape));
            offset += t.numel;
          }
        }),
      );
    } finally {
      flat.dispose();
    }
  }
}

/** Rank 0's values of `values` on every rank. */
export async function agreeWithRankZero(group: ProcessGroup, values: number[]): Promise<number[]> {
  const t = torch.tensor(values, [values.length], { dtype: 'float64' });
  try {
    await group.broadcast([t], 0);
    return t.toArray();
  } finally {
    t.dispose();
  }
}

/** Rank 0's JSON value on every rank (the plan, for ranks that did not make it); other ranks pass null. */
export async function broadcastJson<T>(group: ProcessGroup, value: T | null): Promise<T> {
  const bytes = group.rank === 0 ? new TextEncoder().encode(JSON.stringify(value)) : new Uint8Array(0);
  const [length] = (await agreeWithRankZero(group, [bytes.length])) as [number];
  const t = group.rank === 0 ? torch.tensor(bytes, [length], { dtype: 'uint8' }) : torch.zeros([length], { dtype: 'uint8' });
  try {
    await group.broadcast([t], 0);
    return JSON.parse(new TextDecoder().decode(t.toTypedArray() as Uint8Array)) as T;
  } finally {
    t.dispose();
  }
}

/**
 * Each rank's batch in a data-parallel run of a plan: the plan's batch split
 * over the ranks (rounded up, so the global batch is at least the plan's).
 */
export function rankBatchSize(planBatch: number, worldSize: number): number {
  return Math.max(1, Math.ceil(planBatch / worldSize));
}

/** Each rank's loader seed: rank 0 keeps the run's seed (one rank trains as a plain run does), the others draw other patches. */
export function rankSeed(seed: number, rank: number): number {
  return seed + 7919 * rank;
}

/** The mean of `value` over the ranks. */
export async function meanOverRanks(group: ProcessGroup, value: number): Promise<number> {
  const t = torch.tensor([value], [1], { dtype: 'float64' });
  try {
    await group.allReduceSum([t]);
    return t.item() / group.worldSize;
  } finally {
    t.dispose();
  }
}

export class DataParallel {
  private readonly buckets: Bucket[];
  private readonly slotOf = new Map<Tensor, { bucket: number; slot: Slot }>();
  private readonly removeHooks: (() => void)[] = [];
  private nextToLaunch = 0;
  private inBackward = false;
  private queuedDuringBackward = 0;
  lastTiming: ReduceTiming = { waitSeconds: 0, buckets: 0, queuedDuringBackward: 0, bytes: 0 };

  private constructor(
    readonly group: ProcessGroup,
    params: Tensor[],
    bucketBytes: number,
    private readonly overlap: boolean,
  ) {
    this.buckets = [];
    let current: Slot[] = [];
    let size = 0;
    const close = () => {
      if (current.length === 0) return;
      this.buckets.push({ flat: torch.zeros([size]).keep(), slots: current, filled: new Set(), work: null });
      current = [];
      size = 0;
    };
    for (const p of [...params].reverse()) {
      if (p.dtype !== 'float32') throw new TypeError(`data-parallel training needs float32 parameters, got ${p.dtype} [${p.shape.join(', ')}]`);
      if (size > 0 && (size + p.numel) * 4 > bucketBytes) close();
      const slot: Slot = { param: p, offset: size, numel: p.numel, shape: p.shape };
      this.slotOf.set(p, { bucket: this.buckets.length, slot });
      current.push(slot);
      size += p.numel;
    }
    close();
    if (overlap) {
      for (const p of params) this.removeHooks.push(p.registerHook((g) => this.onGradient(p, g)));
    }
  }

  /**
   * Wraps a network's trainable parameters (and broadcasts rank 0's
   * parameters and buffers to every rank). Every rank must call it with the
   * same architecture.
   */
  static async create(
    group: ProcessGroup,
    net: { parameters(): Tensor[]; namedBuffers?(): [string, Tensor][] },
    o: DataParallelOptions = {},
  ): Promise<DataParallel> {
    const params = net.parameters().filter((p) => p.requiresGrad);
    const buffers = net.namedBuffers?.().map(([, b]) => b) ?? [];
    await broadcastFromRankZero(group, [...params, ...buffers]);
    const mb = o.bucketMB ?? 25;
    if (!(mb > 0)) throw new RangeError(`bucket size must be > 0 MB, got ${mb}`);
    return new DataParallel(group, params, mb * 2 ** 20, o.overlap ?? true);
  }

  get bucketCount(): number {
    return this.buckets.length;
  }

  /** Every rank takes rank 0's values of its decisions (stop now, elapsed time, epoch to start from), so all ranks follow one control flow. */
  agree(values: number[]): Promise<number[]> {
    return agreeWithRankZero(this.group, values);
  }

  private onGradient(p: Tensor, g: Tensor): void {
    if (!this.inBackward) return;
    const at = this.slotOf.get(p)!;
    const bucket = this.buckets[at.bucket]!;
    torch.noGrad(() => torch.tidy(() => bucket.flat.narrow(0, at.slot.offset, at.slot.numel).copy_(g.reshape([-1]))));
    bucket.filled.add(at.slot);
    this.launchReady();
  }

  /** Queues the all-reduce of every full bucket whose predecessors are all queued. */
  private launchReady(): void {
    while (this.nextToLaunch < this.buckets.length) {
      const b = this.buckets[this.nextToLaunch]!;
      if (b.filled.size < b.slots.length) return;
      b.work = this.group.allReduceSum([b.flat]);
      // A failure is awaited (and thrown) in synchronize(); mark it handled until then.
      b.work.catch(() => {});
      if (this.inBackward) this.queuedDuringBackward++;
      this.nextToLaunch++;
    }
  }

  /**
   * Runs backward on the loss with the gradient all-reduces queued as their
   * buckets fill (or, without overlap, all of them after backward). Then
   * `await synchronize()` before reading the gradients.
   */
  backward(loss: Tensor): void {
    for (const b of this.buckets) b.filled.clear();
    this.nextToLaunch = 0;
    this.queuedDuringBackward = 0;
    this.inBackward = this.overlap;
    try {
      loss.backward();
    } finally {
      this.inBackward = false;
    }
    // What the hooks did not fill: every gradient without overlap, unused parameters' zeros with it.
    torch.noGrad(() =>
      torch.tidy(() => {
        for (const b of this.buckets) {
          for (const s of b.slots) {
            if (b.filled.has(s)) continue;
            const slice = b.flat.narrow(0, s.offset, s.numel);
            const g = s.param.grad;
            if (g) slice.copy_(g.reshape([-1]));
            else slice.zero_();
            b.filled.add(s);
          }
        }
      }),
    );
    this.launchReady();
  }

  /** Waits for every bucket's all-reduce and sets each parameter's gradient to the mean over the ranks. */
  async synchronize(): Promise<void> {
    const t0 = performance.now();
    try {
      await Promise.all(this.buckets.map((b) => b.work));
    } finally {
      for (const b of this.buckets) b.work = null;
    }
    this.lastTiming = {
      waitSeconds: (performance.now() - t0) / 1000,
      buckets: this.buckets.length,
      queuedDuringBackward: this.queuedDuringBackward,
      bytes: this.buckets.reduce((s, b) => s + b.flat.numel * 4, 0),
    };
    const scale = 1 / this.group.worldSize;
    torch.noGrad(() =>
      torch.tidy(() => {
        for (const b of this.buckets) {
          b.flat.mul_(scale);
          for (const s of b.slots) {
            const mean = b.flat.narrow(0, s.offset, s.numel).view(s.shape);
            const g = s.param.grad;
            if (g) g.copy_(mean);
            else s.param.grad = mean.clone();
          }
        }
      }),
    );
  }

  /** Removes the hooks and frees the buckets (the group stays: its owner destroys it). */
  dispose(): void {
    for (const remove of this.removeHooks.splice(0)) remove();
    for (const b of this.buckets) b.flat.dispose();
  }
}

/**
 * trainingStep (step.ts) for one rank of a data-parallel run: forward and
 * loss on this rank's batch, backward with the gradient all-reduce, then
 * clipping and the optimizer step on the mean gradient. Returns this rank's
 * loss before the update.
 */
export async function dataParallelStep(
  net: Trainable,
  opt: torch.optim.Optimizer,
  dp: DataParallel,
  image: Tensor,
  label: Tensor,
  s: StepSettings,
  skeletons?: Tensor,
): Promise<number> {
  const loss = torch.tidy(() => {
    const l = deepSupervisionLoss(forwardIn(s.precision, net, image), label, s.loss, skeletons);
    opt.zeroGrad();
    dp.backward(l);
    return l.item();
  });
  await dp.synchronize();
  torch.tidy(() => {
    if (s.gradClip > 0) torch.optim.clipGradNorm(net.parameters(), s.gradClip);
    opt.step();
  });
  return loss;
}
