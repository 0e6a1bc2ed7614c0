/**
 * The page's whole-case prediction (predict-case.ts on plain arrays) against
 * medseg's own prediction (infer/predict.ts on libtorch tensors) of the same
 * exported model on the same real hippocampus case, both running the network
 * in onnxruntime-node so that only the pipelines differ: preprocessing,
 * sliding window with Gaussian weights and mirroring TTA, softmax, argmax,
 * uncropping and keep-largest-component. Chromium runs it in
 * packages/web/test/viewer.test.ts. With uncertainty, the page's members
 * (ONNX) are checked against `predict --uncertainty`'s (libtorch, the same
 * weights): maps, triage score and flag.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type * as OrtWeb from 'onnxruntime-web';
import * as torch from '@medseg/torch';
import { fixtureCalibration, writeFixtureModel } from '../../testing/model-fixture.ts';
import { dataPath } from '../../testing/data.ts';
import { cropVolume } from '../../testing/crop.ts';
import { modelFile, writeCalibration, writePostprocessing } from '../../plan/model-folder.ts';
import { savePlan } from '../../plan/store.ts';
import { disposeModel, loadModel, predictVolumes } from '../../infer/predict.ts';
import { gaussianImportance } from '../../infer/sliding-window.ts';
import { readVolume } from '../../io/read.ts';
import { zyxShape, zyxSpacing } from '../../data/axes.ts';
import { exportModelFolder } from '../export-model.ts';
import { createFilePasses } from '../onnx-predict.ts';
import { loadWebModel } from './web-model.ts';
import { flipAxes, gaussianWeights, transposePlane, WebInferenceCancelled } from './sliding-window.ts';
import { predictCaseWeb, type WebCase } from './predict-case.ts';
import type { Volume } from '../../io/volume.ts';

/**
 * Exports fold 0 of the model folder and predicts the volume in Node through
 * predictVolumes with that ONNX model; returns the model bytes, Node's labels,
 * and the page's input for the same volume.
 */
async function nodeReference(dir: string, file: string, volume: Volume): Promise<{ bytes: Uint8Array; want: Uint8Array; input: WebCase }> {
  exportModelFolder(dir, file, { fold: 0 });
  const bytes = new Uint8Array(readFileSync(file));
  const loaded = loadModel(dir);
  const passes = createFilePasses(loaded, bytes);
  try {
    const want = predictVolumes(loaded, [volume], { networks: passes.networks }).labels.data as Uint8Array;
    return { bytes, want, input: { image: Float32Array.from(volume.data as ArrayLike<number>), shape: zyxShape(volume), spacing: zyxSpacing(volume) } };
  } finally {
    passes.dispose();
    disposeModel(loaded);
  }
}

/** The fixture's 3D U-Net with mirroring TTA and keep-largest-component in `dir`, and a block of a real hippocampus case: 2 × 3 × 2 tiles. */
async function hippocampusFixture(dir: string): Promise<Volume> {
  const plan = writeFixtureModel(dir, 'mri3d', [{ weights: { best: 'random' } }]);
  plan.inference.mirror = true;
  await savePlan(modelFile(dir, 'plan'), plan);
  writePostprocessing(dir, { keepLargestComponent: [1] });
  return cropVolume(await readVolume(dataPath('msd-hippocampus', 'images', 'hippocampus_003.nii.gz')), [6, 10, 6], [24, 32, 24]);
}

/** The fixture's 2D model with mirroring and transposing TTA in `dir`, and 40 × 36 pixels (y × x) of a real EM image: non-square, 4 × 4 tiles of 16 × 16. */
async function emFixture(dir: string): Promise<Volume> {
  const plan = writeFixtureModel(dir, 'gray2d', [{ weights: { best: 'random' } }]);
  plan.inference.mirror = true;
  plan.inference.transpose = true;
  await savePlan(modelFile(dir, 'plan'), plan);
  return cropVolume(await readVolume(dataPath('isbi2012-em', 'images', '0.png')), [200, 200, 0], [36, 40, 1]);
}

test('gaussianWeights equals the libtorch window importance map; flipAxes and transposePlane twice are the identity', () => {
  for (const patch of [
    [16, 16, 16],
    [2, 8, 8],
    [16, 12],
  ]) {
    const want = torch.tidy(() => gaussianImportance(patch).toTypedArray() as Float32Array);
    const got = gaussianWeights(patch);
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    assert.ok(diff < 1e-6, `patch [${patch}]: weights differ by ${diff}`);
  }
  const data = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i);
  const once = flipAxes(data, 2, [3, 4, 5], [0, 2]);
  assert.notDeepEqual(once, data);
  assert.equal(once[0], data[(2 * 4 + 0) * 5 + 4]);
  assert.deepEqual(flipAxes(once, 2, [3, 4, 5], [0, 2]), data);
  const swapped = transposePlane(data, 2, [3, 4, 5]);
  assert.equal(swapped[1], data[5], 'element (y 0, x 1) of the result is (y 1, x 0) of the input');
  assert.deepEqual(transposePlane(swapped, 2, [3, 5, 4]), data);
});

test('predictCaseWeb: the same labels as predictVolumes with the same ONNX model on a real hippocampus case (TTA, keep-largest-component), and a cancel stops it', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-predict-web-'));
  try {
    const dir = join(tmp, 'model');
    // A block of the real case keeps the test quick: 2 × 3 × 2 tiles of 8 mirrored passes.
    const volume = await hippocampusFixture(dir);
    const { bytes, want, input } = await nodeReference(dir, join(tmp, 'model.onnx'), volume);

    const model = await loadWebModel(ort as unknown as typeof OrtWeb, bytes, { executionProviders: ['cpu'] });
    try {
      const ticks: number[] = [];
      const got = await predictCaseWeb(model, input, { onTile: (done) => ticks.push(done) });
      assert.equal(got.passesPerTile, 8, 'mirroring over the three axes');
      assert.equal(ticks.length, got.tiles);
      assert.equal(got.tiles, 12);
      const counts = [0, 0, 0];
      let differ = 0;
      for (let i = 0; i < want.length; i++) {
        counts[want[i]!]!++;
        if (got.labels[i] !== want[i]) differ++;
      }
      assert.ok(counts.filter((n) => n > 0).length >= 2, `at least two classes in the reference mask (${counts})`);
      assert.equal(differ, 0, `labels differ in ${differ} of ${want.length} voxels (reference voxels per class ${counts})`);

      const controller = new AbortController();
      await assert.rejects(
        predictCaseWeb(model, input, { signal: controller.signal, onTile: (done) => done === 2 && controller.abort() }),
        (e: unknown) => e instanceof WebInferenceCancelled,
      );
    } finally {
      await model.session.release();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('predictCaseWeb on a 2D model with mirroring and transposing TTA: the same labels as predictVolumes on a real EM crop', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-predict-web-2d-'));
  try {
    const dir = join(tmp, 'model');
    const volume = await emFixture(dir);
    const { bytes, want, input } = await nodeReference(dir, join(tmp, 'model.onnx'), volume);
    const model = await loadWebModel(ort as unknown as typeof OrtWeb, bytes, { executionProviders: ['cpu'] });
    try {
      const got = await predictCaseWeb(model, input);
      assert.equal(got.passesPerTile, 8, '4 mirrors × 2 transposes');
      assert.equal(got.tiles, 16);
      let differ = 0;
      const classes = new Set<number>();
      for (let i = 0; i < want.length; i++) {
        classes.add(want[i]!);
        if (got.labels[i] !== want[i]) differ++;
      }
      assert.ok(classes.size >= 2, `at least two classes in the reference mask (${[...classes]})`);
      assert.equal(differ, 0, `labels differ in ${differ} of ${want.length} pixels`);
    } finally {
      await model.session.release();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('predictCaseWeb with uncertainty: the entropy and mutual-information maps, triage score and flag of predictVolumes --uncertainty (libtorch, same weights) at the model temperature', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-predict-web-u-'));
  try {
    const dir = join(tmp, 'model');
    const volume = await hippocampusFixture(dir);
    const fitted = { temperature: 0.7, members: 8, sources: ['tta'] };
    writeCalibration(dir, fixtureCalibration({ ...fitted, threshold: 0 }));
    // Node's libtorch members set the threshold a hair below the case's score: flagged there, and must be in the page.
    let loaded = loadModel(dir);
    const first = predictVolumes(loaded, [volume], { uncertainty: {} }).uncertainty!;
    disposeModel(loaded);
    const threshold = first.triageScore - 1e-3;
    writeCalibration(dir, fixtureCalibration({ ...fitted, threshold }));
    loaded = loadModel(dir);
    const want = predictVolumes(loaded, [volume], { uncertainty: {}, keepProbabilities: true });
    disposeModel(loaded);
    assert.equal(want.uncertainty!.flagged, true);
    const { bytes, input } = await nodeReference(dir, join(tmp, 'model.onnx'), volume);
    const model = await loadWebModel(ort as unknown as typeof OrtWeb, bytes, { executionProviders: ['cpu'] });
    try {
      assert.deepEqual(model.info.calibration, {
        temperature: 0.7,
        score: 'meanEntropy',
        members: 8,
        sources: ['tta'],
        triage: { threshold, failureDice: 0.8, auroc: null },
      });
      const ticks: number[] = [];
      const got = await predictCaseWeb(model, input, { uncertainty: true, onTile: (done, total) => ticks.push(done / total) });
      const u = got.uncertainty!;
      assert.equal(u.score.members, 8);
      assert.equal(ticks.length, 8 * got.tiles, "progress over every member's tiles");
      assert.equal(ticks.at(-1), 1);
      assert.equal(u.temperature, 0.7);
      assert.deepEqual(u.sources, ['tta']);
      assert.equal(u.threshold, threshold);
      assert.equal(u.flagged, true);
      assert.ok(Math.abs(u.score.meanEntropy - want.uncertainty!.triageScore) < 1e-4, `score ${u.score.meanEntropy} vs ${want.uncertainty!.triageScore}`);
      assert.equal(u.score.regionVoxels, want.uncertainty!.score.regionVoxels);
      for (const [name, mine, theirs] of [
        ['entropy', u.entropy, want.uncertainty!.entropy.data],
        ['mutual information', u.mutualInformation, want.uncertainty!.mutualInformation.data],
      ] as const) {
        let diff = 0;
        for (let i = 0; i < mine.length; i++) diff = Math.max(diff, Math.abs(mine[i]! - Number(theirs[i])));
        assert.ok(diff < 1e-4, `${name}: maps differ by up to ${diff}`);
      }
      const p = want.probabilities!.data as Float32Array;
      const n = got.labels.length;
      const labels = want.labels.data as Uint8Array;
      for (let i = 0; i < n; i++) {
        if (got.labels[i] === labels[i]) continue;
        const margin = Math.abs(p[labels[i]! * n + i]! - p[got.labels[i]! * n + i]!);
        assert.ok(margin < 1e-4, `voxel ${i}: page ${got.labels[i]}, Node ${labels[i]}, probability margin ${margin}`);
      }
    } finally {
      await model.session.release();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('predictCaseWeb with uncertainty on a 2D model that mirrors and transposes: the maps and score of predictVolumes --uncertainty; no rule, no flag', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-predict-web-u2d-'));
  try {
    const dir = join(tmp, 'model');
    const volume = await emFixture(dir);
    const loaded = loadModel(dir);
    const want = predictVolumes(loaded, [volume], { uncertainty: {} }).uncertainty!;
    disposeModel(loaded);
    const { bytes, input } = await nodeReference(dir, join(tmp, 'model.onnx'), volume);
    const model = await loadWebModel(ort as unknown as typeof OrtWeb, bytes, { executionProviders: ['cpu'] });
    try {
      const u = (await predictCaseWeb(model, input, { uncertainty: true })).uncertainty!;
      assert.equal(u.score.members, 8, '4 mirrors × 2 transposes');
      assert.equal(u.flagged, null);
      assert.equal(u.threshold, null);
      assert.ok(Math.abs(u.score.meanEntropy - want.triageScore) < 1e-4, `score ${u.score.meanEntropy} vs ${want.triageScore}`);
      let diff = 0;
      for (let i = 0; i < u.entropy.length; i++) diff = Math.max(diff, Math.abs(u.entropy[i]! - Number(want.entropy.data[i])));
      assert.ok(diff < 1e-4, `entropy maps differ by up to ${diff}`);
    } finally {
      await model.session.release();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
