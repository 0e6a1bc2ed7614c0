/**
 * Object size and thickness of 2D label maps, and the 2D planner's choice of
 * resolution from them: large blobs train coarser so the patch sees them
 * whole, thin structures keep full resolution.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { dataPath } from '../testing/data.ts';
import { readVolume } from '../io/read.ts';
import type { Zyx } from '../plan/types.ts';
import type { CaseFingerprint, Fingerprint } from './fingerprint.ts';
import { foregroundSize, MIN_THICKNESS_PIXELS, typicalObject } from './object-size.ts';
import { makePlan, planForObjects } from './planner.ts';

function disc(ny: number, nx: number, cy: number, cx: number, r: number): Uint8Array {
  const m = new Uint8Array(ny * nx);
  for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) if ((y - cy) ** 2 + (x - cx) ** 2 <= r * r) m[y * nx + x] = 1;
  return m;
}

test('foregroundSize: a disc of radius R is 2R+1 across and 0.59 R thick; a 3-pixel line is about 2 thick; an empty map has none', () => {
  const d = foregroundSize(disc(200, 300, 100, 150, 60), [1, 200, 300]);
  assert.deepEqual(d!.extent, [121, 121]);
  // Continuous disc: the median distance to the edge is R (1 - 1/sqrt 2), so 2x that is 0.586 R.
  assert.ok(Math.abs(d!.thickness - 0.586 * 60) < 1.5, String(d!.thickness));
  const line = new Uint8Array(50 * 80);
  for (let y = 20; y < 23; y++) for (let x = 5; x < 75; x++) line[y * 80 + x] = 1;
  const l = foregroundSize(line, [1, 50, 80]);
  assert.deepEqual(l!.extent, [3, 70]);
  assert.equal(l!.thickness, 2, 'the middle row is 2 from the background, the edge rows 1: median 1, twice that 2');
  assert.equal(foregroundSize(new Uint8Array(100), [1, 10, 10]), null);
  assert.equal(typicalObject([{ spacing: [1, 1, 1] as Zyx, foreground: null }]), null);
});

function photoFingerprint(extent: [number, number], thickness: number): Fingerprint {
  const cases: CaseFingerprint[] = Array.from({ length: 200 }, (_, i) => ({
    id: String(i),
    spacing: [1, 1, 1],
    shape: [1, 256, 384],
    croppedShape: [1, 256, 384],
    foreground: { extent, thickness },
  }));
  return {
    schema: 'medseg.fingerprint/1',
    name: 'photos',
    channels: ['R', 'G', 'B'],
    labels: { 0: 'background', 1: 'lesion' },
    dims: 2,
    cases,
    intensity: [0, 1, 2].map(() => ({ mean: 100, median: 90, std: 20, min: 0, max: 255, percentile_00_5: 5, percentile_99_5: 250 })),
    classFrequencies: {},
    medianRelativeSizeAfterCropping: 1,
  };
}

// A fixed throughput model slow enough that a 13-minute budget shrinks the full-resolution patch.
const throughput = { macsPerSecond: 1e10, overheadSeconds: 0.05 };
const budget = { minutes: 13, cores: 2, memoryGiB: 8 };

test('2D plan: objects larger than the full-resolution patch train at the smallest coarser grid whose patch covers them, and the plan says why', async () => {
  const big = await makePlan(photoFingerprint([180, 280], 90), { budget, throughput });
  const covers = (p: typeof big) => p.patchSize[0]! * p.targetSpacing[1] >= 180 && p.patchSize[1]! * p.targetSpacing[2] >= 280;
  const fullRes = await makePlan(
    { ...photoFingerprint([180, 280], 90), cases: photoFingerprint([180, 280], 90).cases.map(({ foreground: _f, ...c }) => c) },
    { budget, throughput },
  );
  assert.equal(fullRes.resolution, undefined, 'a fingerprint without object sizes plans as before');
  assert.ok(!covers(fullRes), `the budget's full-resolution patch ${fullRes.patchSize} is smaller than the object`);
  assert.ok(big.resolution!.factor > 1, big.resolution!.reason);
  assert.deepEqual(big.targetSpacing.slice(1), [big.resolution!.factor, big.resolution!.factor]);
  assert.ok(covers(big), `${big.patchSize} at ${big.targetSpacing}`);
  assert.match(big.resolution!.reason, /coarser in-plane \(the smallest coarsening whose patch covers it\): the typical object is 180 x 280 mm, 90 mm thick/);
  assert.ok(big.medianShape[1] < 256 && big.medianShape[2] < 384);
});

test('2D plan: thin structures (vessels, membranes) keep full resolution however large their extent; small objects too', async () => {
  const vessels = await makePlan(photoFingerprint([250, 380], 2), { budget, throughput });
  assert.equal(vessels.resolution!.factor, 1);
  assert.deepEqual(vessels.targetSpacing, [1, 1, 1]);
  assert.match(vessels.resolution!.reason, new RegExp(`thinner than ${MIN_THICKNESS_PIXELS} pixels`));
  const small = await makePlan(photoFingerprint([20, 30], 10), { budget, throughput });
  assert.equal(small.resolution!.factor, 1);
  assert.match(small.resolution!.reason, /^full resolution: .* covers/);
});

test('2D plan on the shared DRIVE vessel maps: the vessel tree spans the image but is a few pixels thick, so the plan keeps full resolution', async () => {
  const cases: CaseFingerprint[] = [];
  for (const n of [21, 22, 23, 24, 25]) {
    const v = await readVolume(join(dataPath('drive'), 'training', '1st_manual', `${n}_manual1.gif`));
    const shape: Zyx = [1, v.size[1], v.size[0]];
    const label = Uint8Array.from(v.data as ArrayLike<number>, (x) => (x > 0 ? 1 : 0));
    cases.push({ id: String(n), spacing: [1, 1, 1], shape, croppedShape: shape, foreground: foregroundSize(label, shape) });
  }
  const object = typicalObject(cases)!;
  assert.ok(object.extentMm[0] > 400 && object.extentMm[1] > 400 && object.thicknessMm < MIN_THICKNESS_PIXELS, JSON.stringify(object));
  const plan = await makePlan({ ...photoFingerprint([0, 0], 0), cases }, { budget, throughput });
  assert.equal(plan.resolution!.factor, 1);
  assert.match(plan.resolution!.reason, /thinner than/);
});

test('planForObjects: when no coarser grid covers clearly more of the object (its patch shrinks as the grid coarsens), full resolution stays', async () => {
  const full = await makePlan(photoFingerprint([180, 280], 90), { throughput });
  const object = { extentMm: [180, 280] as [number, number], thicknessMm: 90 };
  const fullSmall = { ...full, patchSize: [96, 192], targetSpacing: [1, 1, 1] as Zyx };
  const asked: number[] = [];
  // Every coarser plan's patch covers the same 96 x 192 mm.
  const same = await planForObjects(
    fullSmall,
    object,
    async (spacing) => (asked.push(spacing[1]), { ...full, targetSpacing: spacing, patchSize: [96 / spacing[1], 192 / spacing[2]] }),
  );
  assert.deepEqual(asked, [1.5, 2, 3, 4]);
  assert.equal(same.resolution!.factor, 1);
  assert.deepEqual(same.patchSize, [96, 192]);
  assert.match(same.resolution!.reason, /no coarser grid's patch .* covers clearly more of it/);
  // A grid whose patch covers more (but not all) of it is taken, and the reason says how much.
  const some = await planForObjects(fullSmall, object, async (spacing) => ({
    ...full,
    targetSpacing: spacing,
    patchSize: spacing[1] === 2 ? [64, 128] : [96 / spacing[1], 192 / spacing[2]],
  }));
  assert.equal(some.resolution!.factor, 2);
  // 128/180 x 256/280 of the box.
  assert.match(some.resolution!.reason, /^2x coarser in-plane \(the patch covering most of it, 65% of its area\)/);
});
