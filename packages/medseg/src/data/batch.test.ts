import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeBatch, transposePlanes } from './batch.ts';
import { tubedSkeletons } from './skeleton.ts';
import { defaultAugmentation } from '../plan/complete.ts';
import type { PreprocessedCase } from './types.ts';

/** One 2D slice whose pixel (y, x) holds y * 1000 + x, labelled 1 where x > y. */
function coordinateCase(Y: number, X: number): PreprocessedCase {
  const data = new Float32Array(Y * X);
  const label = new Uint8Array(Y * X);
  for (let y = 0; y < Y; y++)
    for (let x = 0; x < X; x++) {
      data[y * X + x] = y * 1000 + x;
      label[y * X + x] = x > y ? 1 : 0;
    }
  return { id: 'c', data, label, channels: 1, shape: [1, Y, X], spacing: [1, 1, 1], properties: { classLocations: {} } } as unknown as PreprocessedCase;
}

test('transposePlanes swaps rows and columns of every channel', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // 2 channels of 2x3
  assert.deepEqual([...transposePlanes(a, 2, 2, 3)], [1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12]);
});

test('a transposed 2D patch is cut with swapped extents, turned to the patch shape, and keeps its label aligned', () => {
  const patchSize = [8, 12];
  const augmentation = defaultAugmentation(2, patchSize, true);
  assert.equal(augmentation.transpose!.p, 0.5);
  assert.equal(defaultAugmentation(2, patchSize, false).transpose!.p, 0);
  assert.equal(defaultAugmentation(3, [8, 8, 8], true).transpose!.p, 0);
  for (const k of ['rotation', 'scaling', 'elastic', 'mirror', 'noise', 'blur', 'brightness', 'contrast', 'lowResolution', 'gamma'] as const)
    augmentation[k].p = 0;
  augmentation.gamma.pInvert = 0;
  const cases = [coordinateCase(30, 40)];
  const plan = { patchSize, batchSize: 16, augmentation, oversampleForeground: 0 };
  const b = makeBatch(cases, plan, 5);
  assert.deepEqual(b.shape, [16, 1, 8, 12]);
  let swapped = 0;
  for (let s = 0; s < 16; s++) {
    const img = b.image.subarray(s * 96, (s + 1) * 96);
    const lab = b.label.subarray(s * 96, (s + 1) * 96);
    // Along a patch row the source row (transposed) or column (plain) advances by one.
    const step = img[1]! - img[0]!;
    assert.ok(step === 1 || step === 1000, `sample ${s}: step ${step}`);
    if (step === 1000) swapped++;
    for (let i = 0; i < 96; i++) {
      const v = img[i]!,
        y = Math.floor(v / 1000),
        x = v % 1000;
      assert.equal(lab[i], x > y ? 1 : 0, 'label moved with the image');
    }
  }
  assert.ok(swapped > 2 && swapped < 14, `${swapped} of 16 transposed at p = 0.5`);
  // Off: no patch is transposed, and the sequence is the one plans without the option give.
  augmentation.transpose!.p = 0;
  const plain = makeBatch(cases, plan, 5);
  const { transpose: _t, ...older } = augmentation;
  assert.deepEqual(makeBatch(cases, { ...plan, augmentation: older as typeof augmentation }, 5).image, plain.image);
  for (let s = 0; s < 16; s++) assert.equal(plain.image[s * 96 + 1]! - plain.image[s * 96]!, 1);
});

test('with skeletonClasses a 2D batch carries the tubed skeletons of its own labels, and the same patches as without', () => {
  const patchSize = [16, 20];
  const augmentation = defaultAugmentation(2, patchSize, true);
  const cases = [coordinateCase(30, 40)];
  const plan = { patchSize, batchSize: 4, augmentation, oversampleForeground: 0.33 };
  const plain = makeBatch(cases, plan, 9);
  const b = makeBatch(cases, plan, 9, true, { skeletonClasses: 2 });
  assert.equal(plain.skeleton, undefined);
  assert.deepEqual(b.image, plain.image);
  assert.deepEqual(b.label, plain.label);
  assert.deepEqual(b.skeleton, tubedSkeletons(b.label, [4, 16, 20], 2));
  assert.ok(
    b.skeleton!.some((v) => v === 1),
    'the triangle x > y has a skeleton',
  );
  assert.throws(
    () => makeBatch(cases, { ...plan, patchSize: [1, 16, 20], augmentation: defaultAugmentation(3, [1, 16, 20]) }, 9, true, { skeletonClasses: 2 }),
    /2D/,
  );
});
