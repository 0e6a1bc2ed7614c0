/**
 * `medseg predict` as a user runs it (a child process per command) on real
 * hippocampus MRI, generated 2D images and synthetic DICOM series, with small
 * untrained model folders: exit codes, messages, the files written.
 */
import { runMedseg, type CliRun } from '../../testing/cli.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readDicomSeg, readDicomSeries, segMasks } from '../../io/dicom/index.ts';
import { synthSlice } from '../../testing/dicom-synth.ts';
import { readVolume, writeVolume } from '../../io/read.ts';
import { IDENTITY3 } from '../../io/volume.ts';
import { EXIT_USAGE } from '../errors.ts';
import { fixtureCalibration, writeFixtureModel } from '../../testing/model-fixture.ts';
import { foldDir, foldFile, writeCalibration } from '../../plan/model-folder.ts';
import { dataPath } from '../../testing/data.ts';

const STACK = /\n\s+at .+:\d+:\d+/;

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 180_000 });
}

function assertFailure(r: ReturnType<typeof medseg>, code: number, pattern: RegExp): void {
  assert.equal(r.status, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, STACK, 'no stack trace without MEDSEG_DEBUG');
  assert.doesNotMatch(r.stderr, /unexpected error/);
}

const HIPPO = ['hippocampus_001', 'hippocampus_003', 'hippocampus_006'];

describe('medseg predict', () => {
  let tmp: string;
  let mri: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-predict-cli-'));
    mri = join(tmp, 'mri-model');
    // fold 0: best weights say "anterior" (1) everywhere, final weights "posterior" (2).
    writeFixtureModel(mri, 'mri3d', [{ weights: { best: 1, final: 2 } }]);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('a truncated or garbage weights file is a typed input error (exit 2, naming the file)', () => {
    const model = join(tmp, 'damaged-model');
    writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }]);
    const weights = foldFile(foldDir(model, 0), 'best');
    const bytes = readFileSync(weights);
    const image = dataPath('msd-hippocampus', 'images', `${HIPPO[0]}.nii.gz`);

    writeFileSync(weights, bytes.subarray(0, Math.floor(bytes.length / 2)));
    let r = medseg('predict', model, image, '--out', join(tmp, 'o-trunc'), '--json');
    assertFailure(r, 2, /weights file is incomplete/);
    const err = JSON.parse(r.stdout) as { error: { code: string; path: string } };
    assert.equal(err.error.code, 'TRUNCATED');
    assert.equal(err.error.path, weights);

    writeFileSync(weights, Buffer.from('these bytes are not a safetensors file, just text padding it out'));
    r = medseg('predict', model, image, '--out', join(tmp, 'o-garbage'), '--json');
    assertFailure(r, 2, /not a valid safetensors/);
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'CORRUPT');
    assert.ok(r.stderr.includes(weights), r.stderr);
  });

  test('a folder with one truncated case: the others are predicted (with probabilities), then exit 2 listing the failure', async () => {
    const input = join(tmp, 'mri-cases');
    mkdirSync(input);
    for (const id of HIPPO) copyFileSync(dataPath('msd-hippocampus', 'images', `${id}.nii.gz`), join(input, `${id}.nii.gz`));
    const whole = readFileSync(join(input, `${HIPPO[1]}.nii.gz`));
    const broken = join(input, 'hippocampus_broken.nii.gz');
    writeFileSync(broken, whole.subarray(0, 2000));
    const out = join(tmp, 'mri-out');
    const r = medseg('predict', mri, input, '--out', out, '--save-probabilities');
    assertFailure(r, 2, /1 of 4 case\(s\) could not be predicted/);
    assert.ok(r.stderr.includes(broken), r.stderr);
    assert.deepEqual(readdirSync(out).sort(), HIPPO.flatMap((id) => [`${id}.nii.gz`, `${id}_probabilities.nii.gz`]).sort());
    // The successful outputs are still listed on stdout.
    for (const id of HIPPO) assert.ok(r.stdout.includes(join(out, `${id}.nii.gz`)), r.stdout);

    const source = await readVolume(join(input, `${HIPPO[0]}.nii.gz`));
    const labels = await readVolume(join(out, `${HIPPO[0]}.nii.gz`));
    const probs = await readVolume(join(out, `${HIPPO[0]}_probabilities.nii.gz`));
    assert.deepEqual(labels.size, source.size);
    assert.deepEqual([probs.size, probs.spacing, probs.origin, probs.direction], [source.size, source.spacing, source.origin, source.direction]);
    assert.equal(probs.channels, 3);
    assert.ok(probs.data instanceof Float32Array);
    // best weights (the default): class 1 everywhere, with softmax([0, 10, 0]) as its probability.
    const p1 = Math.exp(10) / (Math.exp(10) + 2);
    const n = source.size[0] * source.size[1] * source.size[2];
    assert.ok(labels.data.every((v) => v === 1));
    for (const i of [0, 1234, n - 1]) {
      assert.ok(Math.abs(probs.data[n + i]! - p1) < 1e-5, `p(class 1) at ${i}: ${probs.data[n + i]}`);
      assert.ok(Math.abs(probs.data[i]! + probs.data[n + i]! + probs.data[2 * n + i]! - 1) < 1e-5);
    }
    // nibabel sees the same 4D shape and affine as the input's.
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `
import sys, numpy as np, nibabel as nib
a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
assert b.shape == a.shape + (3,), (a.shape, b.shape)
assert np.allclose(a.affine, b.affine), (a.affine, b.affine)
print('ok')`,
        join(input, `${HIPPO[0]}.nii.gz`),
        join(out, `${HIPPO[0]}_probabilities.nii.gz`),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(py.stdout.trim(), 'ok', py.stderr);
  });

  test('--checkpoint final uses the last-epoch weights, best (the default) the best ones', async () => {
    const image = dataPath('msd-hippocampus', 'images', `${HIPPO[2]}.nii.gz`);
    const r = medseg('predict', mri, image, '--out', join(tmp, 'final'), '--checkpoint', 'final', '--json');
    assert.equal(r.status, 0, r.stderr);
    const written = (JSON.parse(r.stdout) as { outputs: { output: string }[] }).outputs[0]!.output;
    assert.ok(
      (await readVolume(written)).data.every((v) => v === 2),
      'final weights say class 2',
    );
    assertFailure(medseg('predict', mri, image, '--checkpoint', 'latest'), EXIT_USAGE, /Allowed choices are best, final/);
  });

  test('impossible --format and --device choices are clear usage errors', () => {
    const image = dataPath('msd-hippocampus', 'images', `${HIPPO[0]}.nii.gz`);
    assertFailure(medseg('predict', mri, image, '--out', join(tmp, 'x'), '--format', 'png'), EXIT_USAGE, /png holds 2D images, and this model is 3D/);
    assertFailure(medseg('predict', mri, image, '--out', join(tmp, 'x'), '--format', 'dicom-seg'), EXIT_USAGE, /dicom-seg needs DICOM input/);
    const r = medseg('predict', mri, image, '--out', join(tmp, 'x'), '--device', 'cuda');
    // This machine's libtorch (Debian's) has no CUDA: the message names what to build.
    assertFailure(r, EXIT_USAGE, /CUDA-enabled libtorch.*\n?.*LIBTORCH=\/path\/to\/libtorch npm run build:native/);
    assert.match(r.stderr, /libtorch_cpu\.so/);
    assert.ok(!existsSync(join(tmp, 'x')), 'nothing written');
  });

  test('2D PNG input: PNG label map and a one-slice NIfTI of probabilities; --format nrrd', async () => {
    const model = join(tmp, 'gray2d-model');
    writeFixtureModel(model, 'gray2d', [{ weights: { best: 'random' } }]);
    const input = join(tmp, 'png-cases');
    mkdirSync(input);
    const [w, h] = [20, 24];
    const data = new Uint8Array(w * h).map((_, i) => ((i % w) * 11 + Math.floor(i / w) * 7) % 256);
    await writeVolume(join(input, 'slide.png'), { data, size: [w, h, 1], channels: 1, spacing: [1, 1, 1], origin: [0, 0, 0], direction: IDENTITY3, meta: {} });
    const out = join(tmp, 'png-out');
    let r = medseg('predict', model, input, '--out', out, '--save-probabilities');
    assert.equal(r.status, 0, r.stderr);
    const labels = await readVolume(join(out, 'slide.png'));
    const probs = await readVolume(join(out, 'slide_probabilities.nii.gz'));
    assert.deepEqual(labels.size, [w, h, 1]);
    assert.deepEqual([probs.size, probs.channels], [[w, h, 1], 3]);
    // The label map is the argmax of the probabilities (no postprocessing in this model).
    for (let i = 0; i < w * h; i++) {
      const p = [0, 1, 2].map((k) => probs.data[k * w * h + i]!);
      assert.equal(labels.data[i], p.indexOf(Math.max(...p)), `pixel ${i}`);
    }
    r = medseg('predict', model, join(input, 'slide.png'), '--out', join(tmp, 'png-nrrd'), '--format', 'nrrd', '--save-probabilities');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(join(tmp, 'png-nrrd')).sort(), ['slide.nrrd', 'slide_probabilities.nrrd']);
    assert.deepEqual((await readVolume(join(tmp, 'png-nrrd', 'slide.nrrd'))).data, labels.data);
  });

  test('DICOM: a folder of studies predicts every image series; --series picks one; an unknown UID lists those there are', async () => {
    const model = join(tmp, 'ct-model');
    writeFixtureModel(model, 'ct3d', [{ weights: { final: 1 } }]);
    const root = join(tmp, 'studies');
    const write = (dir: string, series: string) => {
      mkdirSync(dir, { recursive: true });
      for (const z of [0, 1, 2]) writeFileSync(join(dir, `s${series}_${z}.dcm`), synthSlice({ z, series, rows: 6, columns: 7 }));
    };
    write(join(root, 'studyA'), '1');
    write(join(root, 'studyB'), '2');
    write(join(root, 'studyB'), '3');
    const out = join(tmp, 'dicom-out');
    let r = medseg('predict', model, root, '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['studyA.seg.dcm', 'studyB_1.2.3.2.2.seg.dcm', 'studyB_1.2.3.2.3.seg.dcm']);
    const source = await readDicomSeries(join(root, 'studyB'), { seriesInstanceUID: '1.2.3.2.3' });
    const seg = await readDicomSeg(join(out, 'studyB_1.2.3.2.3.seg.dcm'));
    const mask = segMasks(seg, source).get(1)!;
    assert.deepEqual(mask.size, source.size);
    assert.ok(
      mask.data.every((v) => v === 1),
      'the SEG covers every slice of its own series',
    );

    r = medseg('predict', model, root, '--out', join(tmp, 'one-series'), '--series', '1.2.3.2.3', '--format', 'nifti');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(join(tmp, 'one-series')), ['studyB.nii.gz']);
    const nifti = await readVolume(join(tmp, 'one-series', 'studyB.nii.gz'));
    assert.deepEqual([nifti.size, nifti.spacing, nifti.origin], [source.size, source.spacing, source.origin]);

    r = medseg('predict', model, root, '--out', join(tmp, 'none'), '--series', '9.9.9');
    assertFailure(r, 2, /no DICOM series 9\.9\.9 here \(series found: 1\.2\.3\.2\.1, 1\.2\.3\.2\.2, 1\.2\.3\.2\.3\)/);
  });

  test("--uncertainty: entropy and mutual-information maps on the input grid, a per-case JSON, the review flag from the model's calibration; impossible choices are usage errors", async () => {
    const model = join(tmp, 'two-fold-model');
    writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }, { weights: { best: 'random' } }]);
    // A calibration with a threshold every case reaches: the case is flagged.
    writeCalibration(model, fixtureCalibration({ temperature: 1.5, threshold: 0, members: 1 }));
    const image = dataPath('msd-hippocampus', 'images', `${HIPPO[0]}.nii.gz`);
    const out = join(tmp, 'o-uncertainty');
    const r = medseg('predict', model, image, '--out', out, '--uncertainty', '--json');
    assert.equal(r.status, 0, r.stderr);
    const [res] = (JSON.parse(r.stdout) as { outputs: { output: string; uncertainty: string; flagged: boolean }[] }).outputs;
    assert.equal(res!.flagged, true);
    const u = JSON.parse(readFileSync(res!.uncertainty, 'utf8')) as {
      members: number;
      sources: string[];
      temperature: number;
      score: number;
      maps: { entropy: string; mutualInformation: string };
    };
    assert.deepEqual([u.members, u.sources, u.temperature], [2, ['ensemble'], 1.5]);
    const input = await readVolume(image);
    for (const map of [u.maps.entropy, u.maps.mutualInformation]) {
      const v = await readVolume(map);
      assert.deepEqual([v.size, v.spacing, v.origin], [input.size, input.spacing, input.origin]);
      assert.ok(
        (v.data as Float32Array).every((x) => x >= 0 && x <= 1 + 1e-6),
        map,
      );
    }
    const mi = (await readVolume(u.maps.mutualInformation)).data as Float32Array;
    assert.ok(
      mi.some((x) => x > 1e-4),
      'two differently initialised folds disagree somewhere',
    );
    assert.ok(u.score > 0 && u.score <= 1);

    assertFailure(
      medseg('predict', model, image, '--out', out, '--uncertainty', 'tta,bogus'),
      EXIT_USAGE,
      /expected a comma list of ensemble, tta, mc-dropout/,
    );
    assertFailure(
      medseg('predict', model, image, '--out', out, '--uncertainty', 'mc-dropout'),
      EXIT_USAGE,
      /needs dropout in the network, and this unet has none/,
    );
    assertFailure(medseg('predict', model, image, '--out', out, '--mc-samples', '4'), EXIT_USAGE, /--mc-samples goes with --uncertainty mc-dropout/);
  });
});
