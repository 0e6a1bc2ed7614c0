/**
 * onnxruntime as a network pass for the sliding window. The sliding window
 * calls forward(x) synchronously inside tidy() scopes, and onnxruntime-node
 * only runs asynchronously, so the session lives in a worker thread: forward
 * copies the tile batch into shared memory, posts it, and blocks on an
 * Atomics wait until the worker has written the logits back. The main thread
 * does nothing meanwhile, so onnxruntime has the cores to itself.
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

/** The worker: plain JavaScript (no TypeScript loader needed), onnxruntime-node resolved by the parent. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const control = new Int32Array(workerData.control);
const message = new Uint8Array(workerData.message);
let session = null;
function finish(state, text) {
  if (text) {
    const bytes = Buffer.from(text, 'utf8').subarray(0, message.length - 4);
    new DataView(message.buffer).setUint32(0, bytes.length, true);
    message.set(bytes, 4);
  }
  Atomics.store(control, 0, state);
  Atomics.notify(control, 0);
}
parentPort.on('message', async (m) => {
  try {
    if (m.kind === 'load') {
      // No spinning after a run: libtorch (preprocessing, TTA flips, accumulation) uses the same cores between runs.
      session = await ort.InferenceSession.create(m.model, {
        intraOpNumThreads: m.threads,
        interOpNumThreads: 1,
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      finish(1);
    } else if (m.kind === 'run') {
      const x = new Float32Array(m.input, 0, m.size).slice();
      const out = (await session.run({ [m.inputName]: new ort.Tensor('float32', x, m.shape) }))[m.outputName];
      const need = out.data.length;
      if (need > m.capacity) {
        control[1] = need;
        finish(3);
        return;
      }
      new Float32Array(m.output, 0, need).set(out.data);
      control[1] = out.dims.length;
      out.dims.forEach((d, i) => (control[2 + i] = d));
      finish(1);
    }
  } catch (e) {
    finish(2, String(e && e.message ? e.message : e));
  }
});
`;

/** An onnxruntime failure inside forward (a shape the model does not accept, a broken model). */
export class OnnxRuntimeError extends Error {
  constructor(message: string) {
    super(`onnxruntime: ${message}`);
    this.name = 'OnnxRuntimeError';
  }
}

export interface OnnxNetworkOptions {
  /** Graph input and output names (default 'image' and 'logits', as export-onnx.ts writes them). */
  inputName?: string;
  outputName?: string;
  /** onnxruntime intra-op threads (default MEDSEG_THREADS, else every core). */
  threads?: number;
  /** How long one call may take before it is given up (default 10 minutes). */
  timeoutMs?: number;
}

/** A synchronous forward over an ONNX model, usable wherever the sliding window takes a network. */
export class OnnxNetwork {
  private readonly worker: Worker;
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * 16));
  private readonly message = new Uint8Array(new SharedArrayBuffer(4096));
  private input = new SharedArrayBuffer(0);
  private output = new SharedArrayBuffer(0);
  private closed = false;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly timeoutMs: number;

  constructor(model: Uint8Array, o: OnnxNetworkOptions = {}) {
    this.inputName = o.inputName ?? 'image';
    this.outputName = o.outputName ?? 'logits';
    this.timeoutMs = o.timeoutMs ?? 600_000;
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ortPath, control: this.control.buffer, message: this.message.buffer },
    });
    // The worker must not keep the process alive on its own; dispose() ends it.
    this.worker.unref();
    const threads = o.threads ?? (Number(process.env.MEDSEG_THREADS) || cpus().length);
    try {
      this.call({ kind: 'load', model, threads });
    } catch (e) {
      void this.worker.terminate();
      this.closed = true;
      throw e;
    }
  }

  /** Posts a message and blocks until the worker reports; returns the state (1 ok, 3 output too large). */
  private call(m: Record<string, unknown>): number {
    if (this.closed) throw new Error('OnnxNetwork is disposed');
    Atomics.store(this.control, 0, 0);
    this.worker.postMessage(m);
    if (Atomics.wait(this.control, 0, 0, this.timeoutMs) === 'timed-out') {
      throw new OnnxRuntimeError(`no answer from the onnxruntime worker within ${this.timeoutMs / 1000} s`);
    }
    const state = Atomics.load(this.control, 0);
    if (state === 2) {
      const n = new DataView(this.message.buffer).getUint32(0, true);
      throw new OnnxRuntimeError(Buffer.from(this.message.subarray(4, 4 + n)).toString('utf8'));
    }
    return state;
  }

  /** Logits for x [N, C, ...spatial] (float32), as a libtorch tensor. */
  forward(x: Tensor): Tensor {
    const data = x.toFloat32Array();
    if (this.input.byteLength < data.byteLength) this.input = new SharedArrayBuffer(data.byteLength);
    new Float32Array(this.input, 0, data.length).set(data);
    // A segmentation net's logits are usually as large as its input times classes / channels; grow on demand.
    for (;;) {
      const capacity = this.output.byteLength / 4;
      const state = this.call({
        kind: 'run',
        input: this.input,
        size: data.length,
        shape: x.shape,
        output: this.output,
        capacity,
        inputName: this.inputName,
        outputName: this.outputName,
      });
      if (state === 3) {
        this.output = new SharedArrayBuffer(4 * this.control[1]!);
        continue;
      }
      const rank = this.control[1]!;
      const dims = Array.from(this.control.subarray(2, 2 + rank));
      const n = dims.reduce((a, b) => a * b, 1);
      return torch.tensor(new Float32Array(this.output, 0, n).slice(), dims);
    }
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
  }
}
