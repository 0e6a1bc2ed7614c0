/**
 * Keeps a worker's lease alive while its main thread predicts. Prediction
 * is synchronous (libtorch holds the thread between tiles), so heartbeats
 * cannot be queries awaited on the main thread's event loop (PostgreSQL's
 * client is asynchronous). A thread of its own, with its own connection to
 * the queue, renews the lease every heartbeatMs — but only while the main
 * thread has shown signs of life (progress) within hungMs, so a hung
 * prediction still loses its lease, while a long synchronous stretch (a
 * large model loading, a slow tile on a busy machine) does not. The two threads share three numbers:
 * the progress, when the main thread was last alive, and the generation of
 * the lease the keeper found lost.
 */
import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lease } from '../store/jobs.ts';
import type { QueueLocation } from '../store/queue.ts';

export interface KeeperSettings {
  at: QueueLocation;
  leaseMs: number;
  heartbeatMs: number;
  /** A main thread silent this long is taken as hung (default 10 leases). */
  hungMs?: number;
}

/** Messages to the keeper thread: hold a lease (under a generation number) or let it go. */
export type KeeperMessage = { type: 'hold'; lease: Lease; generation: number } | { type: 'release'; generation: number };

/** Indexes into the shared Float64Array. */
export const PROGRESS = 0;
export const ALIVE_AT = 1;
/** Index into the shared Int32Array (after the two doubles): the generation found lost. */
export const LOST = 4;

export class LeaseKeeper {
  private readonly thread: Worker;
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  private generation = 0;
  private readonly started: Promise<void>;

  constructor(settings: KeeperSettings) {
    const shared = new SharedArrayBuffer(24);
    this.f64 = new Float64Array(shared, 0, 2);
    this.i32 = new Int32Array(shared);
    const ext = extname(fileURLToPath(import.meta.url));
    const entry = new URL(`./lease-keeper-thread${ext}`, import.meta.url);
    const workerData = { settings, shared };
    // From the TypeScript sources (tests, benches), the thread loads its entry through tsx: a thread does not inherit the process's --import hooks.
    this.thread =
      ext === '.ts'
        ? new Worker(`import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(entry.href)}))`, { eval: true, workerData })
        : new Worker(entry, { workerData });
    this.started = new Promise((resolve, reject) => {
      // Held until ready (a caller awaiting it has nothing else keeping it alive), then never keeping the process alive.
      this.thread.once('message', () => {
        this.thread.unref();
        resolve();
      });
      this.thread.once('error', reject);
    });
    this.thread.on('error', (e) => process.stderr.write(`[lease keeper] thread failed: ${e.message}\n`));
  }

  /** Resolves once the thread has its queue connection (before the first claim: the first lease must not wait for it). */
  ready(): Promise<void> {
    return this.started;
  }

  /** Starts renewing the lease (just claimed, so fresh). */
  hold(lease: Lease): void {
    this.generation++;
    this.alive(0);
    this.thread.postMessage({ type: 'hold', lease, generation: this.generation } satisfies KeeperMessage);
  }

  /** Records progress and that the main thread is alive. */
  alive(progress: number): void {
    this.f64[PROGRESS] = progress;
    this.f64[ALIVE_AT] = Date.now();
  }

  /** Whether the keeper found the held lease lost (expired and taken, or the job cancelled). */
  lost(): boolean {
    return Atomics.load(this.i32, LOST) === this.generation;
  }

  /** Stops renewing (before the outcome is recorded). */
  release(): void {
    this.thread.postMessage({ type: 'release', generation: this.generation } satisfies KeeperMessage);
  }

  async stop(): Promise<void> {
    await this.thread.terminate();
  }
}
