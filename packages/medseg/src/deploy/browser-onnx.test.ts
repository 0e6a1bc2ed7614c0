/**
 * The exported hippocampus model in a web page: headless Chromium (the
 * Debian package, driven by playwright-core, which never downloads a browser)
 * loads onnxruntime-web's wasm runtime from the installed npm package over a
 * loopback HTTP server that the test starts and stops. The page gets the raw
 * voxels of a whole MSD hippocampus case, preprocesses them from the model's
 * metadata alone (deploy/browser/preprocess.ts), runs the model
 * (deploy/browser/web-model.ts) and posts its input, logits and mask back.
 * The input must equal prepareInput's, the logits onnxruntime-node's within
 * 1e-4 · max(1, |logit|), and the mask Node's at every voxel whose class is
 * not a float32 tie. Both decoders are checked: transposed 3D convolutions
 * and upsample + conv.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { BrowserContext, Page } from 'playwright-core';
import ts from 'typescript';
import * as torch from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { hippocampusCrop, overfit } from '../testing/models.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { dataPath } from '../testing/data.ts';
import { ChromiumMissingError, launchChromium } from '../testing/chromium.ts';
import { foldDir, foldFile, modelFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { savePlan } from '../plan/store.ts';
import type { NetworkConfig, Plan } from '../plan/types.ts';
import { prepareInput } from '../infer/predict.ts';
import { readVolume } from '../io/read.ts';
import { exportModelFolder } from './export-model.ts';
import { readModelInfo } from './browser/web-model.ts';
import { networkStride, padToMultiple } from './browser/preprocess.ts';
import { zyxShape, zyxSpacing } from '../data/axes.ts';
import type { Volume } from '../io/volume.ts';

const CASE = 'hippocampus_003';
const TOLERANCE = 1e-4;
const ORT_DIST = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
const SRC = dirname(dirname(fileURLToPath(import.meta.url)));

torch.manualSeed(7);

/** The page: onnxruntime-web's wasm build and medseg's browser modules, served by the test; it preprocesses the raw voxels from the model's metadata. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>medseg onnxruntime-web</title>
<link rel="icon" href="data:,">
<script type="module">
import * as ort from '/ort/ort.wasm.min.mjs';
import { loadWebModel, runPatch, argmaxClasses } from '/src/deploy/browser/web-model.js';
import { preprocessAtTargetSpacing, padToMultiple, networkStride } from '/src/deploy/browser/preprocess.js';
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;
window.medsegRun = async (modelUrl, imageUrl, shape, spacing) => {
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const image = new Float32Array(await (await fetch(imageUrl)).arrayBuffer());
  const t0 = performance.now();
  const model = await loadWebModel(ort, bytes);
  const t1 = performance.now();
  const pre = preprocessAtTargetSpacing(model.info, image, shape, spacing);
  const padded = padToMultiple(pre.data, 1, pre.shape, networkStride(model.info));
  const { logits, dims } = await runPatch(model, padded.data, [1, 1, ...padded.shape]);
  const t2 = performance.now();
  const labels = argmaxClasses(logits, dims);
  for (const [name, body] of [['input', pre.data], ['logits', logits], ['labels', labels]]) {
    const r = await fetch('/result/' + name, { method: 'POST', body });
    if (!r.ok) throw new Error('posting ' + name + ': ' + r.status);
  }
  await model.session.release();
  return { dims, shape: pre.shape, loadMs: t1 - t0, runMs: t2 - t1, labels: model.info.labels };
};
window.medsegReady = true;
</script>
`;

/** What the page's script puts on its global object. */
interface PageGlobals {
  medsegReady?: boolean;
  medsegRun(
    modelUrl: string,
    imageUrl: string,
    shape: number[],
    spacing: number[],
  ): Promise<{ dims: number[]; shape: number[]; loadMs: number; runMs: number; labels: Record<string, string> }>;
}

const CONTENT_TYPES: Record<string, string> = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** Library modules the page imports are TypeScript without Node imports; the page gets them as plain ES modules (type imports are erased). */
function transpileModule(path: string): string {
  return ts.transpileModule(readFileSync(path, 'utf8'), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true, rewriteRelativeImportExtensions: true },
  }).outputText;
}

/** A loopback server for the page, the runtime files, the model and input, and the posted results. */
class PageServer {
  readonly files = new Map<string, Uint8Array>();
  readonly results = new Map<string, Buffer>();
  readonly requests: string[] = [];
  /** Paths asked for that the server does not have. */
  readonly missing: string[] = [];
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      this.requests.push(path);
      // Cross-origin isolation lets onnxruntime-web use SharedArrayBuffer should it start threads.
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      if (req.method === 'POST' && path.startsWith('/result/')) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          this.results.set(path.slice('/result/'.length), Buffer.concat(chunks));
          res.writeHead(204).end();
        });
        return;
      }
      const send = (type: string, body: string | Uint8Array) => res.writeHead(200, { 'Content-Type': type }).end(body);
      const ortFile = /^\/ort\/([\w.-]+)$/.exec(path)?.[1];
      const module = /^\/src\/((?:[\w-]+\/)*[\w-]+)\.js$/.exec(path)?.[1];
      if (path === '/') send('text/html', PAGE);
      else if (ortFile && existsSync(join(ORT_DIST, ortFile)))
        send(CONTENT_TYPES[ortFile.slice(ortFile.lastIndexOf('.'))] ?? 'application/octet-stream', readFileSync(join(ORT_DIST, ortFile)));
      else if (module && existsSync(join(SRC, `${module}.ts`))) send('text/javascript', transpileModule(join(SRC, `${module}.ts`)));
      else if (this.files.has(path)) send('application/octet-stream', this.files.get(path)!);
      else {
        this.missing.push(path);
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Fits the fixture's small 3D U-Net (with the given decoder) to a real crop and exports fold 0 to ONNX. */
async function exportedHippocampusModel(dir: string, upsample: NonNullable<NetworkConfig['upsample']>): Promise<{ bytes: Uint8Array; plan: Plan }> {
  const plan = writeFixtureModel(dir, 'mri3d', [{ weights: { best: 'random' } }]);
  plan.network.upsample = upsample;
  await savePlan(modelFile(dir, 'plan'), plan);
  const net = createNetwork(plan.network);
  const { image, label } = await hippocampusCrop([16, 16, 16]);
  const fit = overfit(net, image, label, { maxSteps: 60, lr: 1e-2, target: 0.6 });
  assert.ok(Math.min(...fit.dice) > 0.3, `fitted Dice ${fit.dice}`);
  saveWeights(foldFile(foldDir(dir, 0), 'best'), net.stateDict());
  torch.dispose([image, label]);
  net.dispose();
  const out = join(dir, 'model.onnx');
  exportModelFolder(dir, out, { fold: 0 });
  return { bytes: readFileSync(out), plan };
}

/** The case's voxels as read, float32 [Z, Y, X], with its spacing [z, y, x]: what a page gets from a file. */
async function rawCase(): Promise<{ image: Float32Array; shape: [number, number, number]; spacing: [number, number, number]; volume: Volume }> {
  const volume = await readVolume(dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`));
  return { image: Float32Array.from(volume.data as ArrayLike<number>), shape: zyxShape(volume), spacing: zyxSpacing(volume), volume };
}

describe('exported hippocampus model in headless Chromium (onnxruntime-web, wasm) vs onnxruntime-node', () => {
  let tmp: string;
  let server: PageServer;
  let context: BrowserContext | null = null;
  let page: Page;
  const problems: string[] = [];
  const external: string[] = [];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-browser-onnx-'));
    server = new PageServer();
    await server.start();
    context = await launchChromium(join(tmp, 'profile'));
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) external.push(r.url());
    });
    await page.goto(`${server.url}/`, { waitUntil: 'load', timeout: 30_000 });
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).medsegReady === true, undefined, { timeout: 30_000 });
  });

  after(async () => {
    try {
      await context?.close();
    } finally {
      await server.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  for (const upsample of ['transpose', 'interpolate'] as const) {
    test(`${upsample} decoder: the page's logits within ${TOLERANCE}·max(1, |logit|) of Node's and the same mask on ${CASE} (but for float32 ties)`, async (t) => {
      const dir = join(tmp, upsample);
      const { bytes, plan } = await exportedHippocampusModel(dir, upsample);
      const info = readModelInfo(bytes);
      assert.deepEqual(info.patchSize, plan.patchSize);
      const raw = await rawCase();
      // Node: the case preprocessed as prediction does, zero-padded to the network's stride.
      const prepared = prepareInput(plan, [raw.volume]).case;
      const padded = padToMultiple(prepared.data, 1, prepared.shape, networkStride(info));
      const input = { data: padded.data, shape: [1, 1, ...padded.shape] };
      server.files.set(`/${upsample}/model.onnx`, bytes);
      server.files.set(`/${upsample}/image.bin`, new Uint8Array(raw.image.buffer));
      server.results.clear();

      // Node: onnxruntime-node on the same bytes and input; its mask through libtorch's argmax.
      const session = await ort.InferenceSession.create(bytes);
      const t0 = performance.now();
      const nodeOut = (await session.run({ image: new ort.Tensor('float32', input.data, input.shape) })).logits!;
      const nodeMs = performance.now() - t0;
      await session.release();
      const nodeLogits = nodeOut.data as Float32Array;
      const nodeMask = torch.tidy(
        () =>
          torch
            .tensor(nodeLogits, [...nodeOut.dims])
            .argmax(1)
            .to('uint8')
            .toTypedArray() as Uint8Array,
      );

      const web = await page.evaluate(([m, i, s, sp]) => (globalThis as unknown as PageGlobals).medsegRun(m, i, s, sp), [
        `/${upsample}/model.onnx`,
        `/${upsample}/image.bin`,
        raw.shape,
        raw.spacing,
      ] as const);
      assert.deepEqual(problems, [], `no page errors (paths not found: ${server.missing.join(', ') || 'none'})`);
      assert.deepEqual(web.dims, [...nodeOut.dims]);
      assert.deepEqual(web.labels, plan.labels, 'labels read from the model metadata in the page');
      const posted = (name: string): Uint8Array => {
        const b = server.results.get(name);
        assert.ok(b, `the page posted its ${name}`);
        return new Uint8Array(b);
      };
      // The page preprocessed the raw voxels from the model's metadata alone: the same array as Node's preprocessing.
      const webInput = new Float32Array(posted('input').buffer);
      assert.deepEqual(web.shape, prepared.shape);
      let inputDiff = 0;
      for (let k = 0; k < webInput.length; k++) inputDiff = Math.max(inputDiff, Math.abs(webInput[k]! - prepared.data[k]!));
      assert.equal(webInput.length, prepared.data.length);
      assert.ok(inputDiff <= 1e-6, `preprocessed inputs differ by ${inputDiff}`);
      const webLogits = new Float32Array(posted('logits').buffer);
      const webMask = posted('labels');
      assert.equal(webLogits.length, nodeLogits.length);
      // Both runtimes sum in float32 in their own order (wasm SIMD vs MLAS AVX-512 kernels), so the bound scales with the logit.
      let diff = 0;
      let scaled = 0;
      let peak = 0;
      for (let k = 0; k < nodeLogits.length; k++) {
        const d = Math.abs(webLogits[k]! - nodeLogits[k]!);
        diff = Math.max(diff, d);
        scaled = Math.max(scaled, d / Math.max(1, Math.abs(nodeLogits[k]!)));
        peak = Math.max(peak, Math.abs(nodeLogits[k]!));
      }
      assert.ok(scaled <= TOLERANCE, `logits differ by up to ${diff} (${scaled} of max(1, |logit|); largest |logit| ${peak})`);

      // The masks must agree wherever the class is numerically decided: a voxel may only differ if Node's logits
      // of the two classes lie within twice the measured logit difference of each other (a tie to float32 rounding).
      const voxels = nodeMask.length;
      const counts = [0, 0, 0];
      const ties: string[] = [];
      const decided: number[] = [];
      for (let k = 0; k < voxels; k++) {
        const a = nodeMask[k]!;
        const b = webMask[k]!;
        counts[a]!++;
        if (a === b) continue;
        const margin = Math.abs(nodeLogits[a * voxels + k]! - nodeLogits[b * voxels + k]!);
        if (margin <= 2 * diff) ties.push(`voxel ${k}: node ${a}, page ${b}, margin ${margin.toExponential(1)}`);
        else decided.push(k);
      }
      assert.ok(counts[1]! > 0 && counts[2]! > 0, `both structures in Node's mask (voxels per class ${counts})`);
      assert.equal(decided.length, 0, `the masks differ in ${decided.length} of ${voxels} voxels where the class is not a tie (${decided.slice(0, 5)})`);
      assert.ok(ties.length <= voxels * 1e-4, `${ties.length} near-tie voxels differ: ${ties.slice(0, 5).join('; ')}`);
      t.diagnostic(
        `raw [${raw.shape}] -> input [${input.shape}] (page's preprocessing within ${inputDiff.toExponential(1)} of Node's), voxels per class ${counts.join('/')}, masks equal in ${voxels - ties.length}/${voxels} (${ties.length ? `near ties: ${ties.join('; ')}` : 'no near ties'}), max |logit diff| ${diff.toExponential(1)} (largest |logit| ${peak.toFixed(1)}, diff / max(1, |logit|) ≤ ${scaled.toExponential(1)}); ` +
          `chromium wasm: session ${web.loadMs.toFixed(0)} ms, run ${web.runMs.toFixed(0)} ms; onnxruntime-node run ${nodeMs.toFixed(0)} ms`,
      );
    });
  }

  test('a missing Chromium is a clear error that says how to install it', async () => {
    await assert.rejects(
      launchChromium(join(tmp, 'profile-missing'), { executablePath: join(tmp, 'no-chromium') }),
      (e: unknown) => e instanceof ChromiumMissingError && /apt-get install -y chromium/.test(e.message),
    );
  });

  test('only the loopback server was asked for anything, and the runtime came from the installed package', () => {
    assert.deepEqual(external, []);
    assert.ok(
      server.requests.some((r) => r.endsWith('.wasm')),
      `a .wasm was served (${server.requests.join(', ')})`,
    );
  });
});
