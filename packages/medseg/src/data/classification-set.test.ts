/**
 * Classification data: channels-last RGB arrays become planar channels,
 * label shapes are checked, class-balanced batches draw each class about
 * equally often and are a pure function of (seed, epoch, iteration), and the
 * X-ray augmentation never flips vertically.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MedsegIoError } from '../io/errors.ts';
import type { NpyArray } from '../io/npy.ts';
import { batchArrays, classCounts, classificationSetFromArrays, sampleBatchIndices, subset, xrayAugmentation } from './classification-set.ts';

const arr = (dtype: string, shape: number[], data: NpyArray['data']): NpyArray => ({ dtype, shape, data });

test('classification set: RGB channels-last images become planar [C, H, W], uint8 scaled to [0, 1]', () => {
  // Two 4x4 RGB images; pixel p of image i has (R, G, B) = (20i + p, 100 + p, 200 + p).
  const data = new Uint8Array(2 * 16 * 3);
  for (let i = 0; i < 2; i++) for (let p = 0; p < 16; p++) data.set([20 * i + p, 100 + p, 200 + p], (i * 16 + p) * 3);
  const s = classificationSetFromArrays(arr('uint8', [2, 4, 4, 3], data), arr('uint8', [2, 1], Uint8Array.from([0, 1])));
  assert.equal(s.channels, 3);
  assert.deepEqual(s.shape, [4, 4]);
  const img1 = Array.from(s.images.subarray(48, 96), (v) => Math.round(v * 255));
  const ramp = (o: number) => Array.from({ length: 16 }, (_, p) => o + p);
  assert.deepEqual(img1, [...ramp(20), ...ramp(100), ...ramp(200)]);
  // Grey volumes [N, D, H, W] are 3D with one channel.
  const v = classificationSetFromArrays(arr('uint8', [1, 5, 2, 2], new Uint8Array(20)), arr('int64', [1], BigInt64Array.from([3n])));
  assert.deepEqual([v.channels, ...v.shape, v.labels[0]], [1, 5, 2, 2, 3]);
  assert.throws(
    () => classificationSetFromArrays(arr('uint8', [2, 2, 2], new Uint8Array(8)), arr('uint8', [3], new Uint8Array(3))),
    (e) => e instanceof MedsegIoError && e.code === 'BAD_DATA',
  );
  assert.throws(
    () => classificationSetFromArrays(arr('uint8', [2, 2], new Uint8Array(4)), arr('uint8', [2], new Uint8Array(2))),
    (e) => e instanceof MedsegIoError && e.code === 'BAD_DATA',
  );
});

test('class-balanced batches: equal classes on average, deterministic per (seed, epoch, iteration)', () => {
  const labels = Int32Array.from({ length: 1000 }, (_, i) => (i < 900 ? 1 : 0)); // 9:1 imbalance
  let zeros = 0;
  let plainZeros = 0;
  for (let it = 0; it < 50; it++) {
    zeros += sampleBatchIndices(labels, 64, true, 7, 0, it).filter((i) => labels[i] === 0).length;
    plainZeros += sampleBatchIndices(labels, 64, false, 7, 0, it).filter((i) => labels[i] === 0).length;
  }
  assert.ok(Math.abs(zeros / 3200 - 0.5) < 0.05, `balanced share of class 0: ${zeros / 3200}`);
  assert.ok(Math.abs(plainZeros / 3200 - 0.1) < 0.03, `plain share of class 0: ${plainZeros / 3200}`);
  assert.deepEqual(sampleBatchIndices(labels, 16, true, 7, 3, 5), sampleBatchIndices(labels, 16, true, 7, 3, 5));
  assert.notDeepEqual(sampleBatchIndices(labels, 16, true, 7, 3, 5), sampleBatchIndices(labels, 16, true, 7, 3, 6));
  assert.deepEqual(classCounts(labels, 2), [100, 900]);
});

test('X-ray augmentation: horizontal flips only, and the batch is centred to [-1, 1]', () => {
  assert.deepEqual(xrayAugmentation(2, true).mirror.axes, [1]);
  assert.deepEqual(xrayAugmentation(2, false).mirror.axes, []);
  assert.deepEqual(xrayAugmentation(3, true).mirror.axes, [2]);
  const s = classificationSetFromArrays(arr('uint8', [2, 2, 2], Uint8Array.from([0, 255, 0, 255, 255, 255, 0, 0])), arr('uint8', [2], Uint8Array.from([0, 1])));
  const b = batchArrays(subset(s, [1, 0]), [0, 1], null);
  assert.deepEqual(Array.from(b.image), [1, 1, -1, -1, -1, 1, -1, 1]);
  assert.deepEqual(b.shape, [2, 1, 2, 2]);
  assert.deepEqual(Array.from(b.label), [1n, 0n]);
});
