/**
 * Background batch loading in worker_threads, so the trainer does not wait
 * for sampling and augmentation. Batch k is built by worker k % N from seed
 * mix(seed, k): the sequence is deterministic and independent of the number
 * of workers and of timing. At most `prefetch` batches are in flight or
 * waiting (bounded memory). waitMs counts the time next() spent waiting.
 */
import { Worker } from 'node:worker_threads';
import type { Batch, BatchOptions } from './batch.ts';
import type { Plan } from '../plan/types.ts';

export interface LoaderOptions {
  /** Preprocessed cache folder (data/preprocess.ts) and the case ids to draw from. */
  dir: string;
  ids: string[];
  plan: Pick<Plan, 'patchSize' | 'batchSize' | 'augmentation' | 'oversampleForeground'>;
  workers?: number;
  prefetch?: number;
  seed?: number;
  augment?: boolean;
  /** Index of the first batch (a resumed run continues the same sequence). */
  start?: number;
  /** What else each batch carries (the skeleton-recall targets). */
  batch?: BatchOptions;
}

export class BatchLoader {
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (b: Batch) => void; reject: (e: Error) => void; promise: Promise<Batch> }>();
  private requested = 0;
  private consumed = 0;
  private closed = false;
  private readonly prefetch: number;
  waitMs = 0;

  constructor(o: LoaderOptions) {
    const n = Math.max(1, o.workers ?? 2);
    this.prefetch = Math.max(n, o.prefetch ?? 2 * n);
    this.requested = this.consumed = o.start ?? 0;
    // Run from the TypeScript sources, a worker registers tsx first (loader-boot.mjs);
    // built to JavaScript (dist/), it loads loader-worker.js directly.
    const fromSource = import.meta.url.endsWith('.ts');
    const script = fromSource ? new URL('./loader-boot.mjs', import.meta.url) : new URL('./loader-worker.js', import.meta.url);
    const entry = new URL('./loader-worker.ts', import.meta.url).href;
    for (let i = 0; i < n; i++) {
      const w = new Worker(script, {
        workerData: { entry, dir: o.dir, ids: o.ids, plan: o.plan, seed: o.seed ?? 0, augment: o.augment ?? true, batch: o.batch ?? {} },
      });
      w.on('message', (m: { k?: number; batch?: Batch; error?: string; ready?: boolean }) => {
        if (m.k === undefined) return;
        const p = this.pending.get(m.k);
        if (!p) return;
        if (m.error) p.reject(new Error(`loader worker: ${m.error}`));
        else p.resolve(m.batch!);
      });
      w.on('error', (e) => this.failAll(e));
      this.workers.push(w);
    }
    this.fill();
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
  }

  private fill(): void {
    while (!this.closed && this.requested < this.consumed + this.prefetch) {
      const k = this.requested++;
      let resolve!: (b: Batch) => void, reject!: (e: Error) => void;
      const promise = new Promise<Batch>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {}); // rejections surface in next()
      this.pending.set(k, { resolve, reject, promise });
      this.workers[k % this.workers.length]!.postMessage({ k });
    }
  }

  /** The next batch in sequence. */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error('BatchLoader is closed');
    const k = this.consumed;
    const p = this.pending.get(k)!;
    const t0 = performance.now();
    try {
      return await p.promise;
    } finally {
      this.waitMs += performance.now() - t0;
      this.pending.delete(k);
      this.consumed++;
      this.fill();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('BatchLoader closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
