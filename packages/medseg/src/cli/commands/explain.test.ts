/**
 * `medseg explain` as a user runs it, with small untrained model folders, on
 * crops of real cases (hippocampus MRI as NIfTI and NRRD, an ISBI EM slice as
 * PNG): the heat map lies on the input's grid in the input's format, the
 * overlay and the JSON with the faithfulness numbers are written; a DICOM
 * series gets a Secondary Capture series of the overlays that dciodvfy
 * accepts and pydicom reads; bad options are usage errors (exit 64) that say
 * what to do.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMedseg, type CliRun } from '../../testing/cli.ts';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { dataPath } from '../../testing/data.ts';
import { readVolume, writeVolume } from '../../io/read.ts';
import { voxelTypeOf, type Volume } from '../../io/volume.ts';
import { cropVolume } from '../../testing/crop.ts';
import { EXIT_USAGE } from '../errors.ts';
import { writeSeries } from '../../testing/dicom-compressed.ts';
import { dciodvfy, skipWithoutDciodvfy } from '../../testing/dciodvfy.ts';
import { runPythonJson } from '../../testing/python.ts';

const STACK = /\n\s+at .+:\d+:\d+/;

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 180_000 });
}

function sameGrid(a: Volume, b: Volume): void {
  assert.deepEqual(a.size, b.size);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(a.spacing[i]! - b.spacing[i]!) < 1e-5, `spacing ${a.spacing} vs ${b.spacing}`);
    assert.ok(Math.abs(a.origin[i]! - b.origin[i]!) < 1e-3, `origin ${a.origin} vs ${b.origin}`);
  }
}

describe('medseg explain', () => {
  let tmp: string;
  let mri: string;
  let gray: string;
  let nifti: string;
  let nrrd: string;
  let png: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-explain-cli-'));
    mri = join(tmp, 'mri-model');
    gray = join(tmp, 'gray-model');
    writeFixtureModel(mri, 'mri3d', [{ weights: { best: 'random' } }]);
    writeFixtureModel(gray, 'gray2d', [{ weights: { best: 'random' } }]);
    const hip = await readVolume(dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz'));
    const block = cropVolume(hip, [6, 14, 6], [20, 22, 20]);
    nifti = join(tmp, 'hip.nii.gz');
    nrrd = join(tmp, 'hip.nrrd');
    await writeVolume(nifti, block);
    await writeVolume(nrrd, block);
    const em = await readVolume(dataPath('isbi2012-em', 'images', '0.png'));
    png = join(tmp, 'em.png');
    await writeVolume(png, cropVolume(em, [200, 200, 0], [40, 36, 1]));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('Grad-CAM of a NIfTI case: heat map on the input grid, overlay, JSON with the faithfulness numbers', async () => {
    const out = join(tmp, 'out-gradcam');
    const r = medseg('explain', mri, nifti, '--method', 'gradcam', '--class', '1', '--deletion-steps', '4', '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as {
      ok: boolean;
      method: string;
      settings: { layer: string };
      region: { source: string; voxels: number };
      massInRegion: number;
      faithfulness: { randomisation: { spearman: number; passes: boolean }; deletion: { fractions: number[]; dice: number[]; auc: number; randomAuc: number } };
      files: { heat: string; overlay: string };
    };
    assert.equal(summary.ok, true);
    assert.equal(summary.settings.layer, 'decoder.0');
    assert.ok(summary.region.voxels > 0);
    assert.ok(Number.isFinite(summary.faithfulness.randomisation.spearman) && Math.abs(summary.faithfulness.randomisation.spearman) <= 1);
    assert.deepEqual(summary.faithfulness.deletion.fractions, [0, 0.25, 0.5, 0.75, 1]);
    assert.equal(summary.faithfulness.deletion.dice[0], 1);
    assert.ok(summary.faithfulness.deletion.auc >= 0 && summary.faithfulness.deletion.auc <= 1);
    assert.equal(summary.files.heat, join(out, 'hip_gradcam.nii.gz'));
    const input = await readVolume(nifti);
    const heat = await readVolume(summary.files.heat);
    sameGrid(heat, input);
    assert.equal(voxelTypeOf(heat.data), 'float32');
    const values = Array.from(heat.data as Float32Array);
    assert.ok(values.every(Number.isFinite) && Math.min(...values) >= 0 && Math.max(...values) > 0, 'Grad-CAM is non-negative and not all zero');
    const overlay = await readVolume(summary.files.overlay);
    assert.ok(overlay.size[0] >= 20 && overlay.channels === 3);
    const file = JSON.parse(readFileSync(join(out, 'hip_gradcam.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(file.method, 'gradcam');
    assert.deepEqual(file.faithfulness, JSON.parse(JSON.stringify(summary.faithfulness)));
  });

  test('occlusion of an NRRD case writes NRRD on the input grid; --no-faithfulness skips the checks', async () => {
    const out = join(tmp, 'out-occ');
    const r = medseg('explain', mri, nrrd, '--method', 'occlusion', '--window', '8,8,8', '--stride', '8,8,8', '--no-faithfulness', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /hip_occlusion\.nrrd/);
    assert.doesNotMatch(r.stdout, /randomisation/);
    const heat = await readVolume(join(out, 'hip_occlusion.nrrd'));
    sameGrid(heat, await readVolume(nrrd));
    assert.ok(existsSync(join(out, 'hip_occlusion_overlay.png')));
    const json = JSON.parse(readFileSync(join(out, 'hip_occlusion.json'), 'utf8')) as { faithfulness: unknown; settings: { window: number[] } };
    assert.equal(json.faithfulness, null);
    assert.deepEqual(json.settings.window, [8, 8, 8]);
  });

  test('integrated gradients of a 2D PNG slice writes a PNG heat map of the same size, with progress per stage', async () => {
    const out = join(tmp, 'out-ig');
    const r = medseg('explain', gray, png, '--method', 'ig', '--steps', '4', '--deletion-steps', '2', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /randomisation test: Spearman rho/);
    // Progress of every stage on stderr, ending at its total.
    for (const stage of [/explanation tiles (\d+)\/\1 \(100%\)/, /randomised-network tiles (\d+)\/\1 \(100%\)/, /deletion-curve predictions 7\/7 \(100%\)/])
      assert.match(r.stderr, stage);
    const heat = await readVolume(join(out, 'em_ig.png'));
    assert.deepEqual(heat.size, [40, 36, 1]);
    assert.equal(voxelTypeOf(heat.data), 'uint8');
    assert.ok(Math.max(...Array.from(heat.data as Uint8Array)) === 255);
  });

  test(
    'a DICOM series: heat map as NIfTI, and every slice as a Secondary Capture of the study that dciodvfy accepts',
    { skip: skipWithoutDciodvfy() },
    async () => {
      const series = join(tmp, 'dicom-series');
      const uid = '2.25.4711';
      writeSeries(await readVolume(nifti), series, { bitsAllocated: 16, bitsStored: 16, seriesUID: uid });
      const out = join(tmp, 'out-dicom');
      const r = medseg('explain', mri, series, '--method', 'gradcam', '--class', '1', '--no-faithfulness', '--out', out, '--json');
      assert.equal(r.status, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { files: { heat: string; secondaryCapture: string } };
      assert.match(summary.files.heat, /\.nii\.gz$/);
      const sc = summary.files.secondaryCapture;
      const files = readdirSync(sc).sort();
      assert.equal(files.length, 20, 'one instance per source slice');
      for (const f of [files[0]!, files[10]!]) {
        const v = dciodvfy(join(sc, f));
        assert.deepEqual(v.errors, [], `dciodvfy on ${f}:\n${v.output}`);
      }
      const info = runPythonJson<{ sop: string; shape: number[]; source: string; study: string; series: string; reds: number; orientation: string[] }[]>(
        [
          '-c',
          `import json, sys, pydicom
out = []
for f in json.load(sys.stdin):
    d = pydicom.dcmread(f)
    px = d.pixel_array
    out.append({'sop': d.SOPClassUID, 'shape': list(px.shape), 'source': d.SourceImageSequence[0].ReferencedSOPInstanceUID,
                'study': d.StudyInstanceUID, 'series': d.SeriesInstanceUID, 'orientation': list(d.PatientOrientation),
                'reds': int(((px[..., 0].astype(int) - px[..., 2].astype(int)) > 60).sum())})
print(json.dumps(out))`,
        ],
        files.map((f) => join(sc, f)),
      );
      assert.ok(info.every((x) => x.sop === '1.2.840.10008.5.1.4.1.1.7' && x.study === `${uid}.0` && x.series !== uid));
      assert.deepEqual(info[0]!.shape, [22, 20, 3], 'rows x columns x RGB at the source resolution');
      assert.deepEqual(
        info.map((x) => x.source),
        files.map((_, z) => `${uid}.${z + 1}`),
        'each instance references its source slice',
      );
      assert.equal(new Set(info.map((x) => x.series)).size, 1, 'one series');
      assert.ok(
        info[0]!.orientation.length === 2 && info[0]!.orientation.every((o) => /^[LRAPHF]{1,3}$/.test(o)),
        `patient orientation ${info[0]!.orientation}`,
      );
      assert.ok(
        info.some((x) => x.reds > 0),
        'the heat shows in red-yellow somewhere',
      );
    },
  );

  test('bad options are usage errors naming what to choose instead', () => {
    const out = join(tmp, 'out-bad');
    // (explain-case.test.ts checks the other option errors in-process.)
    const cases: [string[], RegExp][] = [
      [['--method', 'attention'], /unet has no attention to show/],
      [['--class', '7'], /class 7 is not one of the model's classes 0\.\.2/],
    ];
    for (const [args, pattern] of cases) {
      const r = medseg('explain', gray, png, ...args, '--no-faithfulness', '--out', out);
      assert.equal(r.status, EXIT_USAGE, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, STACK);
    }
  });
});
