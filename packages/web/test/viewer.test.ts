/**
 * The viewer page in headless Chromium (Debian's, driven by playwright-core),
 * served from its static build on a loopback server the test starts and
 * stops. Through the page's own controls: open a real MSD hippocampus case
 * and an exported model (the fixture's small U-Net, random weights, with mirroring TTA and
 * keep-largest-component), run the model in the page's Web Worker
 * (onnxruntime-web, wasm), save the mask as NIfTI and read it back with
 * medseg's reader: it must equal Node's prediction of the same case with the
 * same ONNX model (predictVolumes on onnxruntime-node) but for float32 ties.
 * Then hide the mask and check that exactly the mask's colours leave the
 * canvas; the uncertainty map of the page's run and a Grad-CAM heat map of
 * `medseg explain` as overlays with the review flag; paint and erase on an axial slice with undo and redo, each saved
 * and read back, and cancel a run. With MEDSEG_VIEWER_RESULTS=1, screenshots
 * of the states go to bench/results/viewer/ and timings to
 * bench/results/viewer.json.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import type { BrowserContext, Page } from 'playwright-core';
import * as torch from '@medseg/torch';
import { fixtureCalibration, writeFixtureModel } from '@medseg/medseg/testing/model-fixture';
import { hippocampusCrop, overfit } from '@medseg/medseg/testing/models';
import { createNetwork } from '@medseg/medseg/models/registry';
import { saveWeights } from '@medseg/medseg/plan/model-weights';
import { dataPath, repoRoot } from '@medseg/medseg/testing/data';
import { launchChromium } from '@medseg/medseg/testing/chromium';
import { foldDir, foldFile, modelFile, writeCalibration, writePostprocessing } from '@medseg/medseg/plan/model-folder';
import { explainVolumes } from '@medseg/medseg/explain/explain-case';
import { savePlan } from '@medseg/medseg/plan/store';
import { disposeModel, loadModel, predictVolumes } from '@medseg/medseg/infer/predict';
import { readVolume, writeVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { exportModelFolder } from '@medseg/medseg/deploy/export-model';
import { ensureViewerBuilt } from './dist.ts';
import { serveDist } from './serve-dist.ts';
import { onnxReference } from './onnx-reference.ts';
import { canvasPixels, chooseBrush, frames, openViewer, savedMask, waitForState } from './page.ts';

const CASE = 'hippocampus_003';
/** With MEDSEG_VIEWER_RESULTS=1 the test also takes screenshots (halved, small PNGs) and writes them and its timings to bench/results/. */
const WRITE_RESULTS = process.env.MEDSEG_VIEWER_RESULTS === '1';

/** A screenshot of the page halved in each direction (2 × 2 pixel means), so the committed PNGs stay small; only when results are written. */
async function shot(page: Page, dir: string, name: string): Promise<void> {
  if (!WRITE_RESULTS) return;
  const full = PNG.sync.read(await page.screenshot());
  const half = new PNG({ width: full.width >> 1, height: full.height >> 1 });
  for (let y = 0; y < half.height; y++)
    for (let x = 0; x < half.width; x++)
      for (let c = 0; c < 4; c++) {
        const at = (yy: number, xx: number) => full.data[(yy * full.width + xx) * 4 + c]!;
        half.data[(y * half.width + x) * 4 + c] = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1) + 2) >> 2;
      }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.png`), PNG.sync.write(half, { colorType: 2 }));
}

function countLabels(data: ArrayLike<number>, k: number): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === k) n++;
  return n;
}

describe('the viewer page in headless Chromium: open, segment in the browser, show, correct, save', () => {
  let tmp: string;
  let shots: string;
  let server: Awaited<ReturnType<typeof serveDist>>;
  let context: BrowserContext | null = null;
  let page: Page;
  let modelPath: string;
  let source: Volume;
  let node: { labels: Uint8Array; probabilities: Float32Array; seconds: number };
  let browserLabels: Uint8Array;
  /** Node's (libtorch) triage score of the case, one pass; the model's review threshold is just below it. */
  let nodeScore: number;
  let heatmapPath: string;
  let nodeLibtorchSeconds: number;
  /** The mask the page shows after the editing test. */
  let edited: Uint8Array | null = null;
  const problems: string[] = [];
  const external: string[] = [];
  const bench: Record<string, unknown> = {};

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-viewer-'));
    shots = join(repoRoot, 'bench', 'results', 'viewer');
    const build = await ensureViewerBuilt();
    bench.build = build;
    // The model: the fixture's small 3D U-Net, exported with the plan's TTA and postprocessing.
    const dir = join(tmp, 'model');
    const plan = writeFixtureModel(dir, 'mri3d', [{ weights: { best: 'random' } }]);
    plan.inference.mirror = true;
    // A larger patch than the fixture's 16³ tiles the case in 2 × 3 × 2 windows: quick, and still several tiles to report and cancel between.
    plan.patchSize = [24, 32, 24];
    await savePlan(modelFile(dir, 'plan'), plan);
    // For the screenshots, weights fitted to a crop of the case around its hippocampus, so that the mask on show is a plausible one.
    if (WRITE_RESULTS) {
      const net = createNetwork(plan.network);
      const { image, label } = await hippocampusCrop([24, 32, 24], CASE);
      overfit(net, image, label, { maxSteps: 150, lr: 1e-2, target: 0.75 });
      saveWeights(foldFile(foldDir(dir, 0), 'best'), net.stateDict());
      torch.dispose([image, label]);
      net.dispose();
    }
    writePostprocessing(dir, { keepLargestComponent: [1] });
    source = await readVolume(dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`));
    // A calibration for the page's one-pass runs: Node's libtorch score of the case (one member, T = 0.8), and a review threshold just below it.
    const fitted = { temperature: 0.8, members: 1, sources: [] };
    writeCalibration(dir, fixtureCalibration({ ...fitted, threshold: 1 }));
    const libtorch = loadModel(dir);
    try {
      nodeScore = predictVolumes(libtorch, [source], { uncertainty: {}, tta: false }).uncertainty!.triageScore;
      nodeLibtorchSeconds = predictVolumes(libtorch, [source], { tta: false }).seconds;
      // Grad-CAM of the same network on the case, as `medseg explain` writes it: the heat map the page is given.
      heatmapPath = join(tmp, `${CASE}_gradcam.nii.gz`);
      await writeVolume(heatmapPath, explainVolumes(libtorch, [source], { method: 'gradcam', faithfulness: false }).heat);
    } finally {
      disposeModel(libtorch);
    }
    writeCalibration(dir, fixtureCalibration({ ...fitted, threshold: nodeScore - 1e-3 }));
    modelPath = join(tmp, 'fixture-unet.onnx');
    exportModelFolder(dir, modelPath, { fold: 0 });
    node = onnxReference(dir, modelPath, source);

    server = await serveDist();
    context = await launchChromium(join(tmp, 'profile'));
    page = await openViewer(context, `${server.url}/`, problems, (p) => {
      p.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      p.on('request', (r) => {
        if (!r.url().startsWith(server.url) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) external.push(r.url());
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

  test(`open ${CASE} and the model, segment in the page's worker: the saved mask equals Node's prediction but for float32 ties`, async (t) => {
    // The axial view alone: software WebGL draws it much faster than the three planes and the 3D render.
    await page.click('button[data-view="axial"]');
    await page.setInputFiles('#image-file', dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`));
    const opened = await waitForState(page, 'ready');
    assert.match(opened, /34 × 52 × 35 voxels, 1.00 × 1.00 × 1.00 mm/);
    // The model arrives by drag and drop onto the page, as a user would drop a file from the desktop.
    const dropped = await page.evaluateHandle(
      ([bytes, name]) => {
        const g = globalThis as unknown as {
          DataTransfer: new () => { items: { add(f: unknown): void } };
          File: new (parts: unknown[], name: string) => unknown;
        };
        const dt = new g.DataTransfer();
        dt.items.add(new g.File([Uint8Array.from(bytes)], name));
        return dt;
      },
      [[...readFileSync(modelPath)], 'fixture-unet.onnx'] as const,
    );
    await page.dispatchEvent('#stage', 'drop', { dataTransfer: dropped });
    assert.match(await waitForState(page, 'ready'), /Model fixture-unet\.onnx ready/);
    assert.match((await page.locator('#model-card').textContent()) ?? '', /mirror axes 0, 1, 2/);
    await shot(page, shots, '1-scan');

    const progress: number[] = [];
    const watch = setInterval(() => {
      page
        .locator('#progress')
        .evaluate((e) => (e as unknown as { value: number }).value)
        .then((v) => progress.push(v))
        .catch(() => {});
    }, 50);
    // One pass per tile keeps the test quick; the mirrored passes are checked against Node in deploy/browser/predict-case.test.ts.
    await page.uncheck('#tta');
    const t0 = performance.now();
    await page.click('#run');
    const status = await waitForState(page, 'done', 120_000);
    const wallSeconds = (performance.now() - t0) / 1000;
    clearInterval(watch);
    assert.ok(
      progress.some((v) => v > 0 && v < 1),
      `progress shown between 0 and 1 (${progress.length} samples)`,
    );
    const seconds = Number(/Segmented in ([\d.]+) s/.exec(status)?.[1]);

    const mask = await savedMask(page, tmp, 'predicted.nii.gz');
    assert.deepEqual(mask.size, source.size);
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(mask.spacing[i]! - source.spacing[i]!) < 1e-4, `spacing ${mask.spacing} vs ${source.spacing}`);
      assert.ok(Math.abs(mask.origin[i]! - source.origin[i]!) < 1e-3, `origin ${mask.origin} vs ${source.origin}`);
    }
    browserLabels = Uint8Array.from(mask.data as ArrayLike<number>);
    const n = browserLabels.length;
    const counts = [0, 1, 2].map((k) => countLabels(node.labels, k));
    assert.ok(counts[1]! > 0 && counts[2]! > 0, `both structures in Node's mask (voxels per class ${counts})`);
    // A voxel may differ only where Node's two classes' probabilities are within float32 noise of each other.
    const decided: string[] = [];
    let ties = 0;
    for (let i = 0; i < n; i++) {
      const a = node.labels[i]!;
      const b = browserLabels[i]!;
      if (a === b) continue;
      const margin = Math.abs(node.probabilities[a * n + i]! - node.probabilities[b * n + i]!);
      if (margin <= 1e-4) ties++;
      else decided.push(`voxel ${i}: node ${a}, page ${b}, margin ${margin.toExponential(1)}`);
    }
    assert.deepEqual(decided, [], 'masks differ where the class is decided');
    assert.ok(ties <= n * 1e-4, `${ties} near-tie voxels differ`);
    await shot(page, shots, '2-segmented');
    Object.assign(bench, {
      case: CASE,
      model: 'fixture 3D U-Net (features 4, 8) fitted to a crop of the case, patch 24 × 32 × 24, one pass per tile (no TTA)',
      voxels: n,
      browserWasmSeconds: seconds,
      browserWallSeconds: Number(wallSeconds.toFixed(3)),
      nodeOnnxruntimeSeconds: Number(node.seconds.toFixed(3)),
      nodeLibtorchSeconds: Number(nodeLibtorchSeconds.toFixed(3)),
      differingVoxels: ties,
    });
    t.diagnostic(`${status}; wall ${wallSeconds.toFixed(2)} s; Node onnxruntime ${node.seconds.toFixed(2)} s; voxels per class ${counts}; near ties ${ties}`);
  });

  test("the uncertainty map and a Grad-CAM heat map as overlays, each toggled, in its own colours; the case's review flag from the model's threshold", async () => {
    assert.ok(browserLabels, 'the inference test ran first');
    // The flag: the page's score (its ONNX pass) is Node's libtorch score, which the threshold sits just below.
    const flag = page.locator('#case-flag');
    assert.equal(await flag.getAttribute('data-flag'), 'flagged');
    const text = (await flag.textContent()) ?? '';
    const score = Number(/uncertainty ([\d.]+)/.exec(text)?.[1]);
    assert.ok(Math.abs(score - nodeScore) < 2e-4, `page score ${score} vs Node ${nodeScore}: ${text}`);
    assert.match(text, /Review this case: .*threshold [\d.]+ \(1 pass, set on validation cases to catch Dice < 0\.8\)/);
    assert.match((await page.locator('#model-card').textContent()) ?? '', /Temperature0\.800.*Review flaguncertainty ≥/);

    await page.uncheck('#mask-visible');
    /**
     * Canvas pixels that differ between two renders, and how many of them
     * changed in the direction `hue` accepts: the overlay's colour blended
     * over the gray scan moves (r, g, b) towards it, also where it is faint.
     */
    const compare = (on: PNG, off: PNG, hue: (dr: number, dg: number, db: number) => boolean) => {
      let changed = 0;
      let inHue = 0;
      for (let i = 0; i < on.data.length; i += 4) {
        const [dr, dg, db] = [0, 1, 2].map((c) => on.data[i + c]! - off.data[i + c]!) as [number, number, number];
        if (Math.abs(dr) + Math.abs(dg) + Math.abs(db) <= 6) continue;
        changed++;
        if (hue(dr, dg, db)) inHue++;
      }
      return { changed, inHue };
    };
    // Uncertainty: blue-green ('winter') over the gray scan, where the pass is unsure.
    assert.equal(await page.isChecked('#uncertainty-visible'), true);
    const withU = await canvasPixels(page);
    await shot(page, shots, '5-uncertainty');
    await page.keyboard.press('u');
    assert.equal(await page.isChecked('#uncertainty-visible'), false, 'U toggles the uncertainty map');
    const plain = await canvasPixels(page);
    const u = compare(withU, plain, (dr, dg, db) => Math.max(dg, db) > dr);
    assert.ok(u.changed > 50, `the uncertainty map covers ${u.changed} canvas pixels`);
    assert.ok(u.inHue >= u.changed * 0.98, `${u.inHue} of ${u.changed} changed pixels moved towards blue-green`);
    // Lower opacity: the same pixels, fainter.
    await page.keyboard.press('u');
    await page.fill('#uncertainty-opacity', '0.2');
    await page.dispatchEvent('#uncertainty-opacity', 'input');
    const faint = compare(await canvasPixels(page), plain, () => true);
    assert.ok(faint.changed > 0 && faint.changed <= u.changed, `at opacity 0.2 ${faint.changed} pixels differ (${u.changed} at 0.7)`);
    await page.uncheck('#uncertainty-visible');

    // The heat map of `medseg explain`: black-red-yellow ('hot', r >= g >= b), where Grad-CAM is high.
    await page.setInputFiles('#heatmap-file', heatmapPath);
    await page.waitForFunction(() =>
      /Heat map .* shown/.test(
        (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('status').textContent,
      ),
    );
    const withHeat = await canvasPixels(page);
    await shot(page, shots, '6-heatmap');
    await page.uncheck('#heatmap-visible');
    const h = compare(withHeat, await canvasPixels(page), (dr, _dg, db) => dr >= db);
    assert.ok(h.changed > 50, `the heat map covers ${h.changed} canvas pixels`);
    assert.ok(h.inHue >= h.changed * 0.98, `${h.inHue} of ${h.changed} changed pixels moved towards red-yellow`);
    assert.ok(Buffer.compare((await canvasPixels(page)).data, plain.data) === 0, 'with both overlays off, the scan alone');
    await page.check('#mask-visible');
  });

  test('hiding the mask removes exactly its colours from the canvas; showing it brings them back; window presets change the display', async () => {
    assert.ok(browserLabels, 'the inference test ran first');
    const shown = await canvasPixels(page);
    await page.uncheck('#mask-visible');
    const hidden = await canvasPixels(page);
    await shot(page, shots, '3-mask-hidden');
    await page.check('#mask-visible');
    const again = await canvasPixels(page);
    assert.equal(shown.width, hidden.width);
    let changed = 0;
    let wrongHue = 0;
    for (let i = 0; i < shown.data.length; i += 4) {
      const [r0, g0] = [hidden.data[i]!, hidden.data[i + 1]!];
      const [r1, g1] = [shown.data[i]!, shown.data[i + 1]!];
      if (Math.abs(r1 - r0) + Math.abs(g1 - g0) + Math.abs(shown.data[i + 2]! - hidden.data[i + 2]!) <= 6) continue;
      changed++;
      // The hidden view is gray (r = g); a mask pixel is tinted towards red (label 1) or green (label 2).
      if (Math.abs(r0 - g0) > 2 || Math.abs(r1 - g1) < 10) wrongHue++;
    }
    assert.ok(changed > 50, `the mask covers ${changed} canvas pixels`);
    assert.ok(wrongHue <= changed * 0.02, `${wrongHue} of ${changed} changed pixels are not a label colour over gray`);
    assert.ok(Buffer.compare(shown.data, again.data) === 0, 'showing the mask again draws the same pixels');

    // A window preset changes the display; going back to the first one restores it.
    await page.selectOption('#window-preset', 'full');
    const full = await canvasPixels(page);
    await page.selectOption('#window-preset', 'mr-robust');
    const robust = await canvasPixels(page);
    assert.notEqual(Buffer.compare(full.data, robust.data), 0, 'the full range and the robust range look different');
    assert.equal(Buffer.compare(robust.data, again.data), 0, 'back to the robust range, the same pixels');
  });

  test('brush and eraser on an axial slice, undo and redo: each state saved and read back with medseg', async () => {
    assert.ok(browserLabels, 'the inference test ran first');
    await chooseBrush(page, 2, 3);
    const box = (await page.locator('#gl').boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await page.mouse.move(cx - 40, cy + 60);
    await page.mouse.down();
    await page.mouse.move(cx + 40, cy + 60, { steps: 4 });
    await page.mouse.up();
    await frames(page);
    const painted = Uint8Array.from((await savedMask(page, tmp, 'painted.nii.gz')).data as ArrayLike<number>);
    let changedToTwo = 0;
    let otherChanges = 0;
    for (let i = 0; i < painted.length; i++) {
      if (painted[i] === browserLabels[i]) continue;
      if (painted[i] === 2) changedToTwo++;
      else otherChanges++;
    }
    assert.ok(changedToTwo > 10, `the brush stroke set ${changedToTwo} voxels to label 2`);
    assert.equal(otherChanges, 0, 'the brush only writes its own label');
    await shot(page, shots, '4-painted');

    await page.click('button[data-tool="eraser"]');
    await page.mouse.move(cx - 20, cy + 30);
    await page.mouse.down();
    await page.mouse.move(cx - 20, cy + 90, { steps: 4 });
    await page.mouse.up();
    await frames(page);
    const erased = Uint8Array.from((await savedMask(page, tmp, 'erased.nii.gz')).data as ArrayLike<number>);
    let cleared = 0;
    for (let i = 0; i < erased.length; i++) {
      if (erased[i] !== painted[i]) {
        assert.equal(erased[i], 0, `the eraser sets background (voxel ${i})`);
        cleared++;
      }
    }
    assert.ok(cleared > 0, 'the eraser cleared voxels');

    await page.click('#undo');
    assert.deepEqual(Uint8Array.from((await savedMask(page, tmp, 'undo1.nii.gz')).data as ArrayLike<number>), painted, 'undo returns to the painted mask');
    await page.keyboard.press('Control+z');
    assert.deepEqual(
      Uint8Array.from((await savedMask(page, tmp, 'undo2.nii.gz')).data as ArrayLike<number>),
      browserLabels,
      'a second undo returns to the prediction',
    );
    assert.equal(await page.locator('#undo').isDisabled(), true, 'nothing more to undo');
    await page.click('#redo');
    await page.keyboard.press('Control+y');
    assert.deepEqual(Uint8Array.from((await savedMask(page, tmp, 'redo.nii.gz')).data as ArrayLike<number>), erased, 'redo twice returns to the erased mask');
    edited = erased;
    await page.click('button[data-tool="navigate"]');
  });

  test('cancel stops a run between tiles and keeps the mask', async () => {
    // With the model's mirroring the run is 8 passes per tile: long enough to cancel.
    await page.check('#tta');
    await page.click('#run');
    try {
      await page.waitForFunction(
        () =>
          /tile \d+ of/.test(
            (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('status').textContent,
          ),
        undefined,
        { timeout: 30_000 },
      );
    } catch (e) {
      throw new Error(
        `no progress shown: state ${await page.locator('body').getAttribute('data-state')}, status "${await page.locator('#status').textContent()}"`,
        { cause: e },
      );
    }
    await page.click('#cancel');
    assert.match(await waitForState(page, 'cancelled'), /Cancelled/);
    assert.equal(await page.locator('#run').isDisabled(), false, 'the page can run again');
    if (edited)
      assert.deepEqual(Uint8Array.from((await savedMask(page, tmp, 'after-cancel.nii.gz')).data as ArrayLike<number>), edited, 'the corrected mask is kept');
  });

  test('an NRRD copy of the case opens with the grid and voxel size medseg reads, replaces the scan and its mask, and segments the same', async () => {
    // The case written as NRRD by medseg, then read back by it: the grid and spacing NRRD carries.
    const path = join(tmp, `${CASE}.nrrd`);
    await writeVolume(path, source);
    const v = await readVolume(path);
    await page.setInputFiles('#image-file', path);
    const status = await waitForState(page, 'ready');
    const grid = `${v.size.join(' × ')} voxels, ${v.spacing.map((s) => s.toPrecision(3)).join(' × ')} mm`;
    assert.ok(status.includes(grid), `"${status}" names ${grid}`);
    assert.equal(await page.locator('#save-mask').isDisabled(), true, "the previous scan's mask is gone");
    // The same voxels reach the model as from the NIfTI file: the same mask.
    await page.uncheck('#tta');
    await page.click('#run');
    await waitForState(page, 'done');
    const mask = await savedMask(page, tmp, 'from-nrrd.nii.gz');
    assert.deepEqual(mask.size, v.size);
    assert.deepEqual(Uint8Array.from(mask.data as ArrayLike<number>), browserLabels, 'the mask of the NRRD copy equals that of the NIfTI file');
  });

  test('no page errors; nothing asked of any other host; the wasm runtime came from the build', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(external, []);
    assert.ok(
      server.requests.some((r) => r.endsWith('.wasm')),
      'a .wasm was served',
    );
    if (WRITE_RESULTS) writeFileSync(join(repoRoot, 'bench', 'results', 'viewer.json'), `${JSON.stringify(bench, null, 2)}\n`);
  });
});
