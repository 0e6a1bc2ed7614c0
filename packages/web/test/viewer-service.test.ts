/**
 * The viewer page with the medseg service, in headless Chromium: the page is
 * served by a real service on loopback (its /viewer/ route), connects with an
 * API key, segments a real MSD hippocampus case on the service (upload,
 * progress, result), shows the service's label map as the mask (voxel for
 * voxel the job's result file) with the job's uncertainty and Grad-CAM maps
 * as overlays, and after a brush stroke saves the
 * correction back to the service, where it is recorded with the author, the
 * model version and its Dice against the job's result, and stored where
 * `medseg finetune --corrections` reads it. And DICOM in the page: the
 * shared CT series opened as a folder and as a zip (dcm2niix's wasm build in
 * the page), on the grid medseg's own DICOM reader finds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { dataPath } from '@medseg/medseg/testing/data';
import { launchChromium } from '@medseg/medseg/testing/chromium';
import { readVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { startService, type Service } from '../../server/src/service.ts';
import { auth, ctSeries, testConfig, writeCtZip, writeModels } from '../../server/src/testing/fixture.ts';
import { readDicomSeries } from '@medseg/medseg/io/dicom/series';
import { readDicomSeg, segLabelmap } from '@medseg/medseg/io/dicom/seg-read';
import { labelsOnGrid } from '@medseg/medseg/io/same-voxels';
import { dciodvfy } from '@medseg/medseg/testing/dciodvfy';
import { correctionDice } from '../../server/src/corrections/store.ts';
import { ensureViewerBuilt } from './dist.ts';
import { canvasPixels, chooseBrush, openViewer, savedMask, waitForState } from './page.ts';

const CASE = 'hippocampus_003';

let tmp: string;
let svc: Service;
let context: BrowserContext | null = null;
let page: Page;
const problems: string[] = [];

/** The page's mask through its "Save mask" button, read with medseg's reader. */
const pageMask = (name: string): Promise<Volume> => savedMask(page, tmp, name);

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'medseg-viewer-service-'));
  await ensureViewerBuilt();
  svc = await startService(testConfig(join(tmp, 'data'), writeModels(join(tmp, 'models'))));
  context = await launchChromium(join(tmp, 'profile'));
  page = await openViewer(context, `${svc.url}/viewer/`, problems);
});

after(async () => {
  try {
    await context?.close();
  } finally {
    await svc?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('segment on the service, correct the mask, save the correction to the service', async () => {
  const admin = auth(svc.adminKey!);
  // A wrong key is refused with the service's message; the right one lists the models.
  await page.fill('#service-key', 'msk_wrong');
  await page.click('#service-connect');
  assert.match(await waitForState(page, 'error'), /Cannot connect to the service: .*key/i);
  await page.fill('#service-key', svc.adminKey!);
  await page.click('#service-connect');
  assert.match(await waitForState(page, 'empty'), /Connected: 2 model\(s\) on the service/);
  await page.selectOption('#service-model', 'hippo');
  assert.match((await page.locator('#model-card').textContent()) ?? '', /hippo \(version [0-9a-f]{12}, on the service\)/);

  await page.click('button[data-view="axial"]');
  await page.setInputFiles('#image-file', dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`));
  await waitForState(page, 'ready');
  assert.equal(await page.locator('#service-save').isDisabled(), true, 'nothing to save before a service result');
  await page.click('#service-run');
  const status = await waitForState(page, 'done', 120_000);
  const jobId = /job ([0-9a-f]{32})/.exec(status)?.[1];
  assert.ok(jobId, status);

  // The mask on show is the job's result, voxel for voxel.
  const res = await fetch(`${svc.url}/jobs/${jobId}/result`, { headers: admin });
  assert.equal(res.status, 200);
  writeFileSync(join(tmp, 'result.nii.gz'), Buffer.from(await res.arrayBuffer()));
  const result = await readVolume(join(tmp, 'result.nii.gz'));
  const shown = await pageMask('shown.nii.gz');
  assert.deepEqual(shown.size, result.size);
  assert.deepEqual(Uint8Array.from(shown.data as ArrayLike<number>), Uint8Array.from(result.data as ArrayLike<number>));

  // Asked for by default: the uncertainty map and a Grad-CAM heat map, fetched from the job and shown; the fixture model has no review rule.
  const job0 = (await (await fetch(`${svc.url}/jobs/${jobId}`, { headers: admin })).json()) as { uncertainty: { score: number }; maps: Record<string, string> };
  assert.deepEqual(Object.keys(job0.maps).sort(), ['entropy', 'heatmap', 'mutual-information', 'overlay']);
  assert.equal(await page.locator('#case-flag').getAttribute('data-flag'), 'none');
  assert.match((await page.locator('#case-flag').textContent()) ?? '', new RegExp(`Uncertainty ${job0.uncertainty.score.toFixed(4)} .*no review flag`));
  for (const kind of ['uncertainty', 'heatmap']) {
    assert.equal(await page.locator(`#${kind}-visible`).isDisabled(), false, `${kind} map shown`);
    const on = await canvasPixels(page);
    await page.uncheck(`#${kind}-visible`);
    const off = await canvasPixels(page);
    assert.notEqual(Buffer.compare(on.data, off.data), 0, `hiding the ${kind} map changes the canvas`);
  }

  // A brush stroke of label 2 on the axial slice.
  await chooseBrush(page, 2, 3);
  const box = (await page.locator('#gl').boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx - 40, cy - 20);
  await page.mouse.down();
  await page.mouse.move(cx + 40, cy - 20, { steps: 4 });
  await page.mouse.up();
  const edited = await pageMask('edited.nii.gz');
  const editedData = Uint8Array.from(edited.data as ArrayLike<number>);
  let changed = 0;
  for (let i = 0; i < editedData.length; i++) if (editedData[i] !== (result.data as ArrayLike<number>)[i]) changed++;
  assert.ok(changed > 10, `the stroke changed ${changed} voxels`);

  await page.fill('#service-author', 'Dr. Test Reader');
  await page.click('#service-save');
  await page.waitForFunction(
    () => (globalThis as unknown as { document: { body: { dataset: { saved?: string } } } }).document.body.dataset.saved !== undefined,
  );
  assert.match((await page.locator('#status').textContent()) ?? '', new RegExp(`Correction [0-9a-f]{16} saved for job ${jobId}`));
  const list = (await (await fetch(`${svc.url}/jobs/${jobId}/corrections`, { headers: admin })).json()) as {
    corrections: { author: string; modelVersion: string; dice: { mean: number } }[];
  };
  assert.equal(list.corrections.length, 1);
  const c = list.corrections[0]!;
  assert.equal(c.author, 'Dr. Test Reader');
  const job = (await (await fetch(`${svc.url}/jobs/${jobId}`, { headers: admin })).json()) as { modelVersion: string };
  assert.equal(c.modelVersion, job.modelVersion);
  assert.deepEqual(c.dice, correctionDice(result.data as ArrayLike<number>, editedData));
  const stored = await readVolume(join(tmp, 'data', 'corrections', 'hippo', 'labels', `${jobId}.nii.gz`));
  assert.deepEqual(Uint8Array.from(stored.data as ArrayLike<number>), editedData, 'the service stored the mask the page showed');
  assert.deepEqual(problems, []);
});

test('a DICOM series opens from its folder and from a zip, on the grid medseg reads', async () => {
  const ct = ctSeries();
  const source = await readDicomSeries(ct.dir);
  const grid = `${source.size.join(' × ')} voxels, ${source.spacing.map((v) => v.toPrecision(3)).join(' × ')} mm`;
  await page.setInputFiles('#dicom-folder', ct.dir);
  const folder = await waitForState(page, 'ready', 60_000);
  assert.match(folder, /^ct-3slice \(DICOM, as [^)]+\.nii\): /);
  assert.ok(folder.endsWith(grid), `${folder} vs medseg's ${grid}`);
  const zip = join(tmp, 'ct.zip');
  writeCtZip(zip);
  await page.setInputFiles('#image-file', zip);
  const zipped = await waitForState(page, 'ready', 60_000);
  assert.match(zipped, /^ct\.zip \(DICOM, as /);
  assert.ok(zipped.endsWith(grid), zipped);
  // A zip that is not one: a clear message, and the page still works.
  writeFileSync(join(tmp, 'broken.zip'), Buffer.from('PK\u0003\u0004 not really'));
  await page.setInputFiles('#image-file', join(tmp, 'broken.zip'));
  assert.match(await waitForState(page, 'error'), /Cannot open the DICOM series in broken\.zip: broken\.zip is not a readable zip/);
  assert.deepEqual(problems, []);
});

test('a mask painted on a DICOM scan saves as a DICOM SEG of that series: valid by dciodvfy, the same voxels as the NIfTI download', async () => {
  const ct = ctSeries();
  const source = await readDicomSeries(ct.dir);
  await page.setInputFiles('#dicom-folder', ct.dir);
  await waitForState(page, 'ready', 60_000);
  await page.click('button[data-view="axial"]');
  await chooseBrush(page, 1, 8);
  const box = (await page.locator('#gl').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.4);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.6, { steps: 8 });
  await page.mouse.up();
  assert.equal(await page.isDisabled('#save-seg'), false);
  const nifti = await pageMask('ct-mask.nii.gz');
  const download = page.waitForEvent('download');
  await page.click('#save-seg');
  const d = await download;
  assert.match(d.suggestedFilename(), /^ct-3slice_seg\.dcm$/);
  const segPath = join(tmp, 'ct-seg.dcm');
  await d.saveAs(segPath);
  assert.match((await page.locator('#status').textContent()) ?? '', /DICOM SEG, 1 segment, of series /);

  const check = dciodvfy(segPath);
  assert.equal(check.iod, 'Segmentation', check.output);
  assert.deepEqual(check.errors, [], check.output);
  const seg = await readDicomSeg(segPath);
  assert.equal(seg.referencedSeriesInstanceUID, source.meta.seriesInstanceUID);
  assert.equal(seg.meta.studyInstanceUID, source.meta.studyInstanceUID);
  assert.deepEqual(
    seg.segments.map((x) => [x.number, x.label, x.algorithmType]),
    [[1, 'label 1', 'MANUAL']],
  );
  // The SEG placed on the series by medseg's reader holds the painted voxels, each where the NIfTI download has it.
  const { labelmap } = segLabelmap(seg, source);
  const want = labelsOnGrid(nifti.data as ArrayLike<number>, nifti, source);
  const painted = want.reduce((n, v) => n + (v === 1 ? 1 : 0), 0);
  assert.ok(painted > 50, `${painted} voxels painted`);
  assert.deepEqual(Uint8Array.from(labelmap.data as ArrayLike<number>), want);
  assert.deepEqual(problems, []);
});

/** Voxels of `label` per slice along the third (axial) axis of a saved mask. */
function perSlice(v: Volume, label: number): number[] {
  const [nx, ny, nz] = v.size;
  const d = v.data as ArrayLike<number>;
  return Array.from({ length: nz }, (_, z) => {
    let n = 0;
    for (let i = 0; i < nx * ny; i++) if (d[z * nx * ny + i] === label) n++;
    return n;
  });
}

test('editing across slices: two painted slices interpolated, a 3D brush stroke, a filled outline', async () => {
  // A fresh scan: no mask; the tools start an empty one.
  await page.click('button[data-view="axial"]');
  await page.setInputFiles('#image-file', dataPath('msd-hippocampus', 'images', `${CASE}.nii.gz`));
  await waitForState(page, 'ready');
  await chooseBrush(page, 1, 3);
  const box = (await page.locator('#gl').boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const stroke = async (dx: number, dy: number, len = 60) => {
    await page.mouse.move(cx + dx - len / 2, cy + dy);
    await page.mouse.down();
    await page.mouse.move(cx + dx + len / 2, cy + dy, { steps: 6 });
    await page.mouse.up();
  };
  await stroke(0, 0);
  // Five slices further (the mouse wheel moves through the axial slices), a second stroke.
  await page.mouse.move(cx, cy);
  for (let i = 0; i < 5; i++) await page.mouse.wheel(0, -100);
  await stroke(0, 0);
  const two = perSlice(await pageMask('two-slices.nii.gz'), 1);
  const paintedSlices = two.flatMap((n, z) => (n > 0 ? [z] : []));
  assert.equal(paintedSlices.length, 2, `label 1 on two slices: ${two}`);
  const [a, b] = paintedSlices as [number, number];
  assert.ok(b - a >= 2, `slices ${a} and ${b} have a gap`);
  await page.click('#interpolate');
  assert.match((await page.locator('#status').textContent()) ?? '', /Interpolated label 1 between slices \d+, \d+: \d+ voxels changed/);
  const filled = perSlice(await pageMask('interpolated.nii.gz'), 1);
  for (let z = a; z <= b; z++) assert.ok(filled[z]! > 0, `slice ${z} has label 1 after interpolation: ${filled}`);
  assert.deepEqual([filled[a], filled[b]], [two[a], two[b]], 'the painted slices stay as painted');
  assert.ok(
    filled.every((n, z) => n === 0 || (z >= a && z <= b)),
    'nothing outside the painted range',
  );
  await page.click('#undo');
  assert.deepEqual(perSlice(await pageMask('undone.nii.gz'), 1), two, 'undo takes the interpolation back');

  // The 3D brush: a stroke of size 5 reaches the slices next to the one painted.
  await page.check('#brush-3d');
  await page.selectOption('#brush-label', '2');
  await page.fill('#brush-size', '5');
  await page.dispatchEvent('#brush-size', 'change');
  await stroke(0, 60);
  const ball = perSlice(await pageMask('ball.nii.gz'), 2);
  const reached = ball.flatMap((n, z) => (n > 0 ? [z] : []));
  assert.ok(reached.length >= 3 && reached.length <= 6, `label 2 on slices ${reached} (a ball of diameter 5)`);
  const centre = ball.indexOf(Math.max(...ball));
  assert.ok(ball[reached[0]!]! < ball[centre]! && ball[reached[reached.length - 1]!]! < ball[centre]!, `narrower away from the painted slice: ${ball}`);
  await page.uncheck('#brush-3d');

  // Fill: a square outline drawn with the fill tool is painted inside; drawn with the brush (size 1), only its outline.
  const r = 90;
  const square = async () => {
    await page.mouse.move(cx - r, cy - r);
    await page.mouse.down();
    for (const [x, y] of [
      [cx + r, cy - r],
      [cx + r, cy + r],
      [cx - r, cy + r],
      [cx - r, cy - r],
    ] as const)
      await page.mouse.move(x, y, { steps: 8 });
    await page.mouse.up();
  };
  await page.selectOption('#brush-label', '2');
  await page.fill('#brush-size', '1');
  await page.dispatchEvent('#brush-size', 'change');
  await square();
  const outline = Math.max(...perSlice(await pageMask('outline.nii.gz'), 2).map((n, z) => n - ball[z]!));
  await page.click('#undo');
  await page.click('button[data-tool="fill"]');
  await square();
  const filledSquare = Math.max(...perSlice(await pageMask('filled.nii.gz'), 2).map((n, z) => n - ball[z]!));
  assert.ok(outline > 10 && filledSquare > 1.5 * outline, `the outline alone ${outline} voxels, filled ${filledSquare}`);
  await page.click('button[data-tool="navigate"]');
  assert.deepEqual(problems, []);
});
