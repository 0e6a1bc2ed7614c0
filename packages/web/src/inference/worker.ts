/**
 * The inference worker: an exported medseg model on onnxruntime-web,
 * segmenting whole cases with medseg's browser pipeline (sliding window from
 * the model's metadata) off the page's main thread. It reports progress per
 * tile and stops between tiles when cancelled. The model runs on WebGPU when
 * the page asks for it, the browser has an adapter, and the model's largest
 * tensor fits the adapter's buffer limits (deploy/browser/limits.ts);
 * otherwise on onnxruntime's plain wasm build, after checking that one pass
 * fits a wasm heap, with the reason WebGPU was not used. A WebGPU session is
 * kept only after one pass of it over a fixed patch agrees with wasm's
 * (deploy/browser/runtime-agreement.ts); otherwise the page says by how much
 * they differ and runs on wasm. The WebGPU build is loaded only when it is
 * used (it is a larger runtime, whose CPU path is slower than the plain
 * build's).
 */
import type * as OrtWeb from 'onnxruntime-web';
import * as ort from 'onnxruntime-web/wasm';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import glueUrl from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';
import gpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import gpuGlueUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import { loadWebModel, readModelInfo, type WebModel } from '@medseg/medseg/deploy/browser/web-model';
import { wasmLimitProblem, webGpuLimitProblem, webMemoryNeeds, type WebMemoryNeeds } from '@medseg/medseg/deploy/browser/limits';
import { predictCaseWeb } from '@medseg/medseg/deploy/browser/predict-case';
import { WebInferenceCancelled } from '@medseg/medseg/deploy/browser/sliding-window';
import { compareRuntimes } from '@medseg/medseg/deploy/browser/runtime-agreement';
import type { FromWorker, ToWorker } from './protocol.ts';

/** The dedicated worker's global scope, typed by what this file uses (the page's tsconfig has the DOM library, not WebWorker). */
const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  crossOriginIsolated: boolean;
  navigator: {
    hardwareConcurrency?: number;
    gpu?: { requestAdapter(): Promise<{ limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } } | null> };
  };
};

// The runtime's wasm and its loader come from the build as files of their own (vite.config.ts resolves
// onnxruntime-web to its build without the loader inlined): its threads start workers from the loader's URL.
ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, import.meta.url).href, mjs: new URL(glueUrl, import.meta.url).href };
// Threads need SharedArrayBuffer, which only a cross-origin isolated page has.
const threads = scope.crossOriginIsolated ? Math.max(1, Math.min(4, scope.navigator.hardwareConcurrency ?? 1)) : 1;
ort.env.wasm.numThreads = threads;

let model: WebModel | null = null;
let needs: WebMemoryNeeds | null = null;

/** The WebGPU runtime when this model can use it here; else why not. */
async function webGpuRuntime(n: WebMemoryNeeds): Promise<{ ort: typeof OrtWeb } | { why: string }> {
  const gpu = scope.navigator.gpu;
  if (!gpu) return { why: 'this browser has no WebGPU' };
  let adapter;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { why: `no WebGPU adapter (${(e as Error).message})` };
  }
  if (!adapter) return { why: 'no WebGPU adapter on this machine' };
  const problem = webGpuLimitProblem(n, adapter.limits);
  if (problem) return { why: `WebGPU cannot run this model: ${problem}` };
  const gpuOrt = (await import('onnxruntime-web/webgpu')) as unknown as typeof OrtWeb;
  gpuOrt.env.wasm.wasmPaths = { wasm: new URL(gpuWasmUrl, import.meta.url).href, mjs: new URL(gpuGlueUrl, import.meta.url).href };
  gpuOrt.env.wasm.numThreads = threads;
  return { ort: gpuOrt };
}
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
    const bytes = new Uint8Array(msg.model);
    needs = webMemoryNeeds(readModelInfo(bytes), bytes.length);
    let why = 'WebGPU not asked for';
    const problem = wasmLimitProblem(needs, 0);
    if (problem) throw new Error(`this model cannot run in the browser: ${problem}`);
    const wasm = await loadWebModel(ort, bytes);
    if (msg.webgpu) {
      const gpu = await webGpuRuntime(needs);
      if ('ort' in gpu) {
        let candidate: WebModel | null = null;
        try {
          candidate = await loadWebModel(gpu.ort, bytes, { executionProviders: ['webgpu'] });
          const check = await compareRuntimes(candidate, wasm);
          const diff = `largest logit difference ${check.maxAbsDiff.toExponential(1)}, ${(check.relativeDiff * 100).toPrecision(2)} % of their range`;
          if (check.agrees) {
            model = candidate;
            await wasm.session.release();
            const note = `WebGPU (one pass checked against wasm: ${diff})`;
            scope.postMessage({ type: 'loaded', id: msg.id, seconds: (performance.now() - t0) / 1000, threads, provider: 'webgpu', note });
            return;
          }
          why = `WebGPU computes this model differently from wasm (${diff}, ${(check.sameClass * 100).toFixed(1)} % of voxels the same class)`;
        } catch (e) {
          why = `WebGPU failed to start (${(e as Error).message})`;
        }
        await candidate?.session.release();
      } else why = gpu.why;
    }
    model = wasm;
    scope.postMessage({ type: 'loaded', id: msg.id, seconds: (performance.now() - t0) / 1000, threads, provider: 'wasm', note: `${why}: wasm` });
    return;
  }
  if (!model) throw new Error('no model loaded: open an exported .onnx model first');
  // The case, its preprocessed copy and the class probabilities live in the same heap as the runtime's tensors;
  // uncertainty adds the members' sums and the maps.
  const caseBytes = msg.image.byteLength * (2 + model.info.network.numClasses * (msg.uncertainty ? 3 : 1) + (msg.uncertainty ? 3 : 0));
  const tooLarge = needs && model.ort === ort ? wasmLimitProblem(needs, caseBytes) : null;
  if (tooLarge) throw new Error(`this case is too large to segment in the browser: ${tooLarge}; use the service`);
  const controller = new AbortController();
  running.set(msg.id, controller);
  try {
    const result = await predictCaseWeb(
      model,
      { image: msg.image, shape: msg.shape, spacing: msg.spacing },
      {
        tta: msg.tta,
        uncertainty: msg.uncertainty,
        signal: controller.signal,
        onTile: (done, total) => scope.postMessage({ type: 'progress', id: msg.id, done, total }),
      },
    );
    const u = result.uncertainty;
    scope.postMessage(
      {
        type: 'done',
        id: msg.id,
        labels: result.labels,
        seconds: result.seconds,
        tiles: result.tiles,
        passesPerTile: result.passesPerTile,
        ...(u ? { uncertainty: u } : {}),
      },
      [result.labels.buffer, ...(u ? [u.entropy.buffer, u.mutualInformation.buffer] : [])],
    );
  } finally {
    running.delete(msg.id);
  }
}

scope.onmessage = (e) => {
  handle(e.data).catch((err: unknown) => fail(e.data.id, err));
};
