/**
 * The page's WebGPU path against its wasm path, in headless Chromium with
 * WebGPU on SwiftShader (Vulkan on the CPU, shipped with Debian's chromium).
 * Loading a model on WebGPU runs one pass against wasm first: a 2D U-Net on a
 * corner of a real ISBI electron-microscopy slice passes the check, and the slice
 * segmented on WebGPU and on wasm gives the same mask but for float32
 * near-ties (judged by Node's onnxruntime probabilities), both equal to
 * Node's; a 3D U-Net, whose transposed 3D convolutions onnxruntime-web's
 * WebGPU kernels do not implement, falls back to wasm with that reason and
 * still segments the hippocampus case as Node does. SwiftShader's speed says
 * nothing about a GPU's: the seconds are reported, not compared.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { writeFixtureModel } from '@medseg/medseg/testing/model-fixture';
import { dataPath } from '@medseg/medseg/testing/data';
import { launchChromium } from '@medseg/medseg/testing/chromium';
import { modelFile } from '@medseg/medseg/plan/model-folder';
import { savePlan } from '@medseg/medseg/plan/store';
import { readVolume, writeVolume } from '@medseg/medseg/io/read';
import { exportModelFolder } from '@medseg/medseg/deploy/export-model';
import { ensureViewerBuilt } from './dist.ts';
import { openViewer, savedMask, waitForState } from './page.ts';
import { serveDist } from './serve-dist.ts';
import { onnxReference } from './onnx-reference.ts';

const CASE = 'hippocampus_003';

let tmp: string;
let server: Awaited<ReturnType<typeof serveDist>>;
let context: BrowserContext | null = null;
let page: Page;
const problems: string[] = [];

/** An exported fixture U-Net (random weights) and Node's onnxruntime prediction of `image` with it: the reference the page's masks are held to. */
interface Case {
  image: string;
  model: string;
  labels: Uint8Array;
  probabilities: Float32Array;
}
let mri: Case;
let em: Case;

async function exportedCase(kind: 'mri3d' | 'gray2d', patch: number[], image: string): Promise<Case> {
  const dir = join(tmp, kind);
  const plan = writeFixtureModel(dir, kind, [{ weights: { best: 'random' } }]);
  plan.patchSize = patch;
  await savePlan(modelFile(dir, 'plan'), plan);
  const model = join(tmp, `${kind}.onnx`);
  exportModelFolder(dir, model, { fold: 0 });
  return { image, model, ...onnxReference(dir, model, await readVolume(image)) };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'medseg-webgpu-'));
  await ensureViewerBuilt();
  mri = await exportedCase('mri3d', [24, 32, 24], dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`));
  // The viewer opens NIfTI, not PNG: a 128 x 128 corner of the slice (one tile: SwiftShader takes seconds a pass) as a 2D NIfTI, read back by the reference from the same file.
  const png = await readVolume(dataPath('isbi2012-em', 'images', '0.png'));
  const side = 128;
  const corner = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) corner[y * side + x] = Number(png.data[y * png.size[0] + x]);
  const slice = join(tmp, 'isbi-0.nii.gz');
  await writeVolume(slice, { ...png, data: corner, size: [side, side, 1] });
  em = await exportedCase('gray2d', [128, 128], slice);
  server = await serveDist();
  context = await launchChromium(join(tmp, 'profile'), { webgpu: true });
  page = await openViewer(context, `${server.url}/`, problems, (p) => {
    p.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
  });
});

after(async () => {
  try {
    await context?.close();
  } finally {
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

/**
 * Loads the case's model with WebGPU asked for or not (from a copy named for
 * the run: a file input fires no change for the file it already holds),
 * segments the open image without TTA; the mask saved, the status lines.
 */
async function segment(c: Case, webgpu: boolean, name: string): Promise<{ labels: Uint8Array; loaded: string; done: string }> {
  const step = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message} (page: ${await page.locator('#status').textContent()})`);
    }
  };
  if (webgpu) await page.check('#webgpu');
  else await page.uncheck('#webgpu');
  const model = join(tmp, `${name}.onnx`);
  copyFileSync(c.model, model);
  await page.setInputFiles('#model-file', model);
  const loaded = await step('loading the model', () => waitForState(page, 'ready', 120_000));
  await page.uncheck('#tta');
  await page.click('#run');
  const done = await step('segmenting', () => waitForState(page, 'done', 300_000));
  const mask = await step('saving the mask', () => savedMask(page, tmp, `${name}.nii.gz`));
  return { labels: Uint8Array.from(mask.data as ArrayLike<number>), loaded, done };
}

/** Voxels where two masks differ although Node's probabilities of the two classes there are more than float32 noise apart. */
function sameButTies(c: Case, what: string, a: Uint8Array, b: Uint8Array): void {
  const n = a.length;
  const decided: string[] = [];
  let ties = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue;
    const margin = Math.abs(c.probabilities[a[i]! * n + i]! - c.probabilities[b[i]! * n + i]!);
    if (margin <= 1e-4) ties++;
    else decided.push(`voxel ${i}: ${a[i]} vs ${b[i]}, margin ${margin.toExponential(1)}`);
  }
  assert.deepEqual(decided.slice(0, 5), [], `${what}: masks differ where the class is decided (${decided.length} voxels)`);
  assert.ok(ties <= n * 1e-4, `${what}: ${ties} near-tie voxels differ`);
}

const seconds = (status: string) => Number(/Segmented in ([\d.]+) s/.exec(status)?.[1]);

test('a 2D U-Net on an EM slice: WebGPU passes the check against wasm, and WebGPU, wasm and Node give the same mask', async (t) => {
  await page.click('button[data-view="axial"]');
  await page.setInputFiles('#image-file', em.image);
  await waitForState(page, 'ready');
  const gpu = await segment(em, true, 'em-webgpu');
  assert.match(gpu.loaded, /WebGPU \(one pass checked against wasm: largest logit difference [\d.e+-]+, [\d.e+-]+ % of their range\)/);
  const wasm = await segment(em, false, 'em-wasm');
  assert.match(wasm.loaded, /WebGPU not asked for: wasm/);
  t.diagnostic(`${gpu.loaded}; WebGPU (SwiftShader, on the CPU) ${seconds(gpu.done)} s, wasm ${seconds(wasm.done)} s`);
  const counts = [0, 1, 2].map((k) => em.labels.reduce((n, v) => n + (v === k ? 1 : 0), 0));
  assert.ok(counts.filter((n) => n > 0).length >= 2, `more than one class in the reference mask (${counts})`);
  sameButTies(em, 'WebGPU vs wasm', gpu.labels, wasm.labels);
  sameButTies(em, 'WebGPU vs Node', gpu.labels, em.labels);
  sameButTies(em, 'wasm vs Node', wasm.labels, em.labels);
  assert.deepEqual(problems, []);
});

test('a 3D U-Net: WebGPU lacks its transposed 3D convolution, the check says so, and the case runs on wasm as Node predicts it', async () => {
  await page.setInputFiles('#image-file', mri.image);
  await waitForState(page, 'ready');
  const r = await segment(mri, true, 'mri');
  assert.match(r.loaded, /WebGPU failed to start \(.*ConvTranspose.*\): wasm/);
  sameButTies(mri, 'wasm (after WebGPU fell back) vs Node', r.labels, mri.labels);
  // onnxruntime logs the kernel it lacks to the console itself; nothing else went wrong.
  assert.deepEqual(
    problems.filter((p) => !/ConvTranspose.*Only Conv2d or Conv1d are supported/.test(p)),
    [],
  );
});
