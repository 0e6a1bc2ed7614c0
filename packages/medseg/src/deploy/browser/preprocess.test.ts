/**
 * The page-side preprocessing in Node: the same array as medseg's own
 * preprocessing of a real hippocampus case (cropped to its nonzero box and
 * z-scored) and of a CT-normalised fixture, clear errors on a wrong spacing
 * or channel count, padding and the network's stride. The page running it is
 * deploy/browser-onnx.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Plan } from '../../plan/types.ts';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { prepareInput } from '../../infer/predict.ts';
import { readVolume } from '../../io/read.ts';
import { zyxShape, zyxSpacing } from '../../data/axes.ts';
import { dataPath } from '../../testing/data.ts';
import type { OnnxModelInfo } from '../export-model.ts';
import { networkStride, padToMultiple, preprocessAtTargetSpacing } from './preprocess.ts';
import { WebModelError } from './web-model.ts';

/** The metadata fields preprocessing reads, from a plan (as export-model.ts writes them). */
const infoOf = (plan: Plan): OnnxModelInfo =>
  ({ dims: plan.dims, channels: plan.channels, targetSpacing: plan.targetSpacing, normalization: plan.normalization, network: plan.network }) as OnnxModelInfo;

async function hippocampus() {
  const volume = await readVolume(dataPath('msd-hippocampus', 'images', 'hippocampus_006.nii.gz'));
  return { volume, image: Float32Array.from(volume.data as ArrayLike<number>), shape: zyxShape(volume), spacing: zyxSpacing(volume) };
}

/** The fixture's 3D plan with the given normalisation and spacing, and a third stage with strides [2, 2, 2]. */
function plan3d(normalization: Plan['normalization'], targetSpacing: Plan['targetSpacing']): Plan {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-web-preprocess-'));
  try {
    const plan = writeFixtureModel(dir, 'mri3d', []);
    plan.channels = [normalization[0]!.channel];
    plan.normalization = normalization;
    plan.targetSpacing = targetSpacing;
    plan.network.strides = [
      [1, 1, 1],
      [1, 2, 2],
      [2, 2, 2],
    ];
    return plan;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const norm of [
  { channel: 'MRI', scheme: 'zscore', useMaskForNorm: false },
  { channel: 'MRI', scheme: 'zscore', useMaskForNorm: true },
  { channel: 'CT', scheme: 'ct', useMaskForNorm: false, clip: [20, 400], mean: 150, std: 70 },
] as Plan['normalization']) {
  test(`preprocessAtTargetSpacing: the same array as medseg's preprocessing of hippocampus_006 (${norm.scheme}${norm.useMaskForNorm ? ', mask' : ''})`, async () => {
    const c = await hippocampus();
    const plan = plan3d([norm], [...c.spacing]);
    const want = prepareInput(plan, [c.volume]).case;
    const got = preprocessAtTargetSpacing(infoOf(plan), c.image, c.shape, c.spacing);
    assert.deepEqual(got.shape, want.shape);
    assert.deepEqual(got.data, want.data);
  });
}

test('preprocessAtTargetSpacing: a wrong spacing or channel count is a WebModelError that says what to do', async () => {
  const c = await hippocampus();
  const plan = plan3d([{ channel: 'MRI', scheme: 'zscore', useMaskForNorm: false }], [1.5, 1, 1]);
  assert.throws(
    () => preprocessAtTargetSpacing(infoOf(plan), c.image, c.shape, [1, 1, 1]),
    (e: unknown) => e instanceof WebModelError && /resample it first/.test(e.message),
  );
  assert.throws(
    () => preprocessAtTargetSpacing(infoOf(plan), c.image.subarray(1), c.shape, [1.5, 1, 1]),
    (e: unknown) => e instanceof WebModelError && /1 channel/.test(e.message),
  );
});

test('networkStride and padToMultiple: strides multiply per axis; padding adds zeros at the end of each axis', () => {
  const plan = plan3d([{ channel: 'MRI', scheme: 'zscore', useMaskForNorm: false }], [1, 1, 1]);
  assert.deepEqual(networkStride(infoOf(plan)), [2, 4, 4]);
  const data = Float32Array.from({ length: 2 * 3 * 2 * 5 }, (_, i) => i + 1);
  const p = padToMultiple(data, 2, [3, 2, 5], [2, 4, 4]);
  assert.deepEqual(p.shape, [4, 4, 8]);
  const at = (c: number, z: number, y: number, x: number) => p.data[((c * 4 + z) * 4 + y) * 8 + x];
  for (let c = 0; c < 2; c++)
    for (let z = 0; z < 4; z++)
      for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) assert.equal(at(c, z, y, x), z < 3 && y < 2 && x < 5 ? data[((c * 3 + z) * 2 + y) * 5 + x] : 0);
});
