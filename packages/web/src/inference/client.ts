/**
 * The page's side of the inference worker: load a model, run a case with
 * progress, cancel a run. One request at a time per kind is what the page
 * does; each request has its own id, so a late answer never settles another.
 */
import type { WebUncertainty } from '@medseg/medseg/deploy/browser/predict-case';
import type { FromWorker, ToWorker, Zyx } from './protocol.ts';

export interface CaseResult {
  labels: Uint8Array;
  seconds: number;
  tiles: number;
  passesPerTile: number;
  /** With the uncertainty option: the maps, the triage score and the flag. */
  uncertainty?: WebUncertainty;
}

/** The run was cancelled from the page. */
export class InferenceCancelled extends Error {
  constructor() {
    super('inference cancelled');
    this.name = 'InferenceCancelled';
  }
}

interface Pending {
  resolve(m: FromWorker): void;
  reject(e: Error): void;
  onProgress?: (done: number, total: number) => void;
}

export class InferenceClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private runId: number | null = null;

  constructor() {
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'medseg-inference' });
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    this.worker.onerror = (e) => {
      const err = new Error(`the inference worker failed: ${e.message}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  private receive(m: FromWorker): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'progress') {
      p.onProgress?.(m.done, m.total);
      return;
    }
    this.pending.delete(m.id);
    if (m.type === 'error') p.reject(Object.assign(new Error(m.message), { name: m.name }));
    else if (m.type === 'cancelled') p.reject(new InferenceCancelled());
    else p.resolve(m);
  }

  private request(msg: ToWorker, transfer: Transferable[], onProgress?: Pending['onProgress']): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject, onProgress });
      this.worker.postMessage(msg, transfer);
    });
  }

  /**
   * Creates the model's session in the worker (the bytes are copied, the
   * caller keeps its own): on WebGPU when asked, available and within its
   * limits, else on wasm; `note` says why not WebGPU.
   */
  async load(model: ArrayBuffer, o: { webgpu: boolean }): Promise<{ seconds: number; threads: number; provider: 'webgpu' | 'wasm'; note: string }> {
    const copy = model.slice(0);
    const m = await this.request({ type: 'load', id: this.nextId++, model: copy, webgpu: o.webgpu }, [copy]);
    if (m.type !== 'loaded') throw new Error(`unexpected answer '${m.type}' to load`);
    return { seconds: m.seconds, threads: m.threads, provider: m.provider, note: m.note };
  }

  /** Segments one case: image float32 [C, Z, Y, X] (copied), shape and spacing [z, y, x]. */
  async run(image: Float32Array, shape: Zyx, spacing: Zyx, o: { tta: boolean; uncertainty: boolean; onProgress?: Pending['onProgress'] }): Promise<CaseResult> {
    const id = this.nextId++;
    const copy = Float32Array.from(image);
    this.runId = id;
    try {
      const m = await this.request({ type: 'run', id, image: copy, shape, spacing, tta: o.tta, uncertainty: o.uncertainty }, [copy.buffer], o.onProgress);
      if (m.type !== 'done') throw new Error(`unexpected answer '${m.type}' to run`);
      return { labels: m.labels, seconds: m.seconds, tiles: m.tiles, passesPerTile: m.passesPerTile, ...(m.uncertainty ? { uncertainty: m.uncertainty } : {}) };
    } finally {
      if (this.runId === id) this.runId = null;
    }
  }

  /** Asks the worker to stop the current run after its current tile; the run's promise rejects with InferenceCancelled. */
  cancel(): void {
    if (this.runId !== null) this.worker.postMessage({ type: 'cancel', id: this.runId } satisfies ToWorker);
  }

  get busy(): boolean {
    return this.runId !== null;
  }
}
