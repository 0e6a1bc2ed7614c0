/**
 * The inference worker: onnxruntime-web's wasm runtime with an exported
 * medseg model, segmenting whole cases with medseg's browser pipeline
 * (sliding window from the model's metadata) off the page's main thread. It
 * reports progress per tile and stops between tiles when cancelled.
 */
import * as ort from 'onnxruntime-web/wasm';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import glueUrl from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';
import { loadWebModel, type WebModel } from '@medseg/medseg/deploy/browser/web-model';
import { predictCaseWeb } from '@medseg/medseg/deploy/browser/predict-case';
import { WebInferenceCancelled } from '@medseg/medseg/deploy/browser/sliding-window';
import type { FromWorker, ToWorker } from './protocol.ts';

/** The dedicated worker's global scope, typed by what this file uses (the page's tsconfig has the DOM library, not WebWorker). */
const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  crossOriginIsolated: boolean;
  navigator: { hardwareConcurrency?: number };
};

// The runtime's wasm and its loader come from the build as files of their own (vite.config.ts resolves
// onnxruntime-web to its build without the loader inlined): its threads start workers from the loader's URL.
ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, import.meta.url).href, mjs: new URL(glueUrl, import.meta.url).href };
// Threads need SharedArrayBuffer, which only a cross-origin isolated page has.
const threads = scope.crossOriginIsolated ? Math.max(1, Math.min(4, scope.navigator.hardwareConcurrency ?? 1)) : 1;
ort.env.wasm.numThreads = threads;

let model: WebModel | null = null;
const running = new Map<number, AbortController>();

function fail(id: number, e: unknown): void {
  if (e instanceof WebInferenceCancelled) scope.postMessage({ type: 'cancelled', id });
  else {
    const err = e instanceof Error ? e : new Error(String(e));
    scope.postMessage({ type: 'error', id, name: err.name, message: err.message });
  }
}

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'cancel') {
    running.get(msg.id)?.abort();
    return;
  }
  if (msg.type === 'load') {
    const t0 = performance.now();
    const previous = model;
    model = null;
    await previous?.session.release();
    model = await loadWebModel(ort, new Uint8Array(msg.model));
    scope.postMessage({ type: 'loaded', id: msg.id, seconds: (performance.now() - t0) / 1000, threads });
    return;
  }
  if (!model) throw new Error('no model loaded: open an exported .onnx model first');
  const controller = new AbortController();
  running.set(msg.id, controller);
  try {
    const result = await predictCaseWeb(
      model,
      { image: msg.image, shape: msg.shape, spacing: msg.spacing },
      {
        tta: msg.tta,
        signal: controller.signal,
        onTile: (done, total) => scope.postMessage({ type: 'progress', id: msg.id, done, total }),
      },
    );
    scope.postMessage({ type: 'done', id: msg.id, labels: result.labels, seconds: result.seconds, tiles: result.tiles, passesPerTile: result.passesPerTile }, [
      result.labels.buffer,
    ]);
  } finally {
    running.delete(msg.id);
  }
}

scope.onmessage = (e) => {
  handle(e.data).catch((err: unknown) => fail(e.data.id, err));
};
