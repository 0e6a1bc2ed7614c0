import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import { readNifti } from '../io/nifti.ts';
import { foldFile } from '../plan/model-folder.ts';
import { dataPath } from '../testing/data.ts';
import { Rng } from '../util/random.ts';
import { zoomAxis } from '../data/bspline-zoom.ts';
import { maskBlindSpots, prepareVolume, sampleBatch, type EnhanceVolume, type Shape3 } from '../data/enhance-pairs.ts';
import { enhanceVolume } from '../infer/enhance.ts';
import { EnhancementModel } from '../models/enhance-model.ts';
import { DEFAULT_ENHANCE_TRAINING, enhanceLoss, trainEnhancement, validationLoss, type EnhanceTrainingConfig } from './enhance-trainer.ts';

const silent = { start() {}, update() {}, stop() {} };

async function hippocampusVolumes(ids: string[]): Promise<{ data: Float32Array; shape: Shape3 }[]> {
  const out = [];
  for (const id of ids) {
    const v = await readNifti(dataPath('msd-hippocampus', 'images', `${id}.nii.gz`));
    out.push({ data: Float32Array.from(v.data), shape: [v.size[2], v.size[1], v.size[0]] as Shape3 });
  }
  return out;
}

const tiny = { dims: 2 as const, features: [8, 16], patch: [16, 16] };
const cfg = (o: Partial<EnhanceTrainingConfig>): EnhanceTrainingConfig => ({
  ...DEFAULT_ENHANCE_TRAINING,
  batchSize: 4,
  validationBatches: 2,
  schedule: 'poly',
  lr: 3e-3,
  ...o,
});

test('40 steps of supervised denoising on real 2D hippocampus planes lower the validation loss below the noisy input', async () => {
  torch.manualSeed(1);
  const [a, b] = await hippocampusVolumes(['hippocampus_001', 'hippocampus_014']);
  const model = EnhancementModel.create({ task: 'denoise', noise: 0.1, ...tiny });
  const train = [prepareVolume(a!.data, a!.shape, model.settings, 1)];
  const val = [prepareVolume(b!.data, b!.shape, model.settings, 2)];
  const c = cfg({ epochs: 1, iterationsPerEpoch: 40, lr: 1e-2 });
  const before = validationLoss(model, val, c);
  const dir = mkdtempSync(join(tmpdir(), 'medseg-enh-'));
  try {
    const r = await trainEnhancement(model, c, { train, val }, dir, { progress: silent });
    const after = validationLoss(model, val, c);
    assert.equal(r.iterations, 40);
    assert.ok(after < 0.85 * before, `validation L1 ${before} (noisy input) -> ${after}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run paused after one epoch and resumed ends with the weights of an uninterrupted run', async () => {
  const [a] = await hippocampusVolumes(['hippocampus_001']);
  const run = async (dir: string, pause: boolean) => {
    torch.manualSeed(2);
    const model = EnhancementModel.create({ task: 'sr', factor: 2, axis: 0, ...tiny });
    const vols = [prepareVolume(a!.data, a!.shape, model.settings, 1)];
    const c = cfg({ epochs: 2, iterationsPerEpoch: 3 });
    if (pause) {
      await trainEnhancement(model, c, { train: vols, val: vols }, dir, { progress: silent, stopAfterEpochs: 1 });
      const again = EnhancementModel.create({ task: 'sr', factor: 2, axis: 0, ...tiny });
      await trainEnhancement(again, c, { train: vols, val: vols }, dir, { progress: silent, resume: true });
      return again;
    }
    await trainEnhancement(model, c, { train: vols, val: vols }, dir, { progress: silent });
    return model;
  };
  const root = mkdtempSync(join(tmpdir(), 'medseg-enh-'));
  try {
    const straight = await run(join(root, 'a'), false);
    const resumed = await run(join(root, 'b'), true);
    const wa = straight.net.stateDict();
    const wb = resumed.net.stateDict();
    let worst = 0;
    let moved = 0;
    for (const [k, t] of wa) {
      worst = Math.max(
        worst,
        torch.tidy(() => t.sub(wb.get(k)!).abs().max().item()),
      );
      moved = Math.max(
        moved,
        torch.tidy(() => t.abs().max().item()),
      );
    }
    assert.ok(moved > 0);
    assert.ok(worst < 1e-6, `largest weight difference ${worst}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("Noise2Void: blind spots take a neighbour's value, and the loss sees only them", () => {
  torch.manualSeed(3);
  const box: Shape3 = [1, 16, 16];
  const original = Float32Array.from({ length: 256 }, (_, i) => i);
  const input = Float32Array.from(original);
  const mask = maskBlindSpots(input, box, 5, new Rng(4));
  const masked = [...mask.keys()].filter((i) => mask[i]);
  assert.equal(masked.length, 5);
  for (let i = 0; i < 256; i++) {
    if (!mask[i]) assert.equal(input[i], original[i]);
    else {
      const [y, x] = [Math.floor(i / 16), i % 16];
      const [ny, nx] = [Math.floor(input[i]! / 16), input[i]! % 16];
      assert.ok(input[i] !== original[i] && Math.abs(ny - y) <= 2 && Math.abs(nx - x) <= 2, `voxel ${i} took ${input[i]}`);
    }
  }
  const model = EnhancementModel.create({ task: 'denoise', selfSupervised: true, noise: 0.1, ...tiny });
  const vol: EnhanceVolume = { input: Float32Array.from({ length: 4 * 20 * 20 }, (_, i) => Math.sin(i) + 1), target: null, shape: [4, 20, 20] };
  const b = sampleBatch([vol], model.settings, 2, 5, 0, 0);
  const spots = b.mask!.reduce((s, m) => s + m, 0);
  assert.equal(spots, 2 * Math.round(0.01 * 256));
  const loss = () => torch.tidy(() => enhanceLoss(model, b).item());
  const l0 = loss();
  const off = b.mask!.findIndex((m) => m === 0);
  b.target[off] = b.target[off]! + 100;
  assert.equal(loss(), l0, 'a target change off the blind spots leaves the loss alone');
  const on = b.mask!.findIndex((m) => m === 1);
  b.target[on] = b.target[on]! + 100;
  // |o - t - 100| - |o - t| lies in [100 - 2|o - t|, 100], and |o - t| < 2 here
  const moved = (loss() - l0) * spots;
  assert.ok(moved > 95 && moved <= 100 + 1e-3, `a target change at a blind spot moves the summed L1 loss by ${moved}`);
});

test('an untrained super-resolution model returns the B-spline zoom in the refined geometry; a segmentation folder is refused', async () => {
  torch.manualSeed(5);
  const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_014.nii.gz'));
  const model = EnhancementModel.create({ task: 'sr', factor: 2, axis: 0, ...tiny });
  const out = enhanceVolume(model, v);
  assert.deepEqual(out.size, [v.size[0], v.size[1], v.size[2] * 2]);
  assert.equal(out.spacing[2], v.spacing[2] / 2);
  const shift = v.spacing[2] * -0.25;
  out.origin.forEach((o, r) => assert.ok(Math.abs(o - (v.origin[r]! + v.direction[3 * r + 2]! * shift)) < 1e-9));
  const z = zoomAxis(v.data, [v.size[2], v.size[1], v.size[0]], 0, 2);
  let worst = 0;
  for (let i = 0; i < z.data.length; i++) worst = Math.max(worst, Math.abs(out.data[i]! - z.data[i]!));
  assert.ok(worst < 1e-2, `max difference from the zoom ${worst}`);
  const dir = mkdtempSync(join(tmpdir(), 'medseg-enh-'));
  try {
    writeFileSync(join(dir, 'plan.json'), '{}');
    assert.throws(
      () => EnhancementModel.load(dir),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'UNSUPPORTED' && /segmentation model/.test(e.message),
    );
    mkdirSync(join(dir, 'empty'));
    assert.throws(
      () => EnhancementModel.load(join(dir, 'empty')),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND',
    );
    model.writeSettings(dir);
    torch.saveSafetensors(foldFile(dir, 'final'), model.net.stateDict());
    assert.equal(EnhancementModel.load(dir).settings.task, 'sr');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => EnhancementModel.create({ task: 'sr', factor: 3 }), RangeError);
});
