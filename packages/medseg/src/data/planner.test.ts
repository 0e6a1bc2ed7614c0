import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fingerprint, CaseFingerprint } from './fingerprint.ts';
import { makePlan, targetSpacingOf, validationSeconds, VALIDATION_SHARE } from './planner.ts';
import { loadPlan, savePlan } from '../plan/store.ts';
import { poolAndConvProps } from './topology.ts';

function fingerprint(cases: CaseFingerprint[], channels = ['MRI'], dims: 2 | 3 = 3, relSize = 1): Fingerprint {
  return {
    schema: 'medseg.fingerprint/1',
    name: 'synthetic',
    channels,
    labels: { 0: 'background', 1: 'a', 2: 'b' },
    dims,
    cases,
    intensity: channels.map(() => ({ mean: 100, median: 90, std: 20, min: -1000, max: 3000, percentile_00_5: -50, percentile_99_5: 400 })),
    classFrequencies: {},
    medianRelativeSizeAfterCropping: relSize,
  };
}
const many = (n: number, f: (i: number) => Omit<CaseFingerprint, 'id'>) => Array.from({ length: n }, (_, i) => ({ id: String(i), ...f(i) }));
// A fixed throughput model keeps the plan independent of this machine's load.
const throughput = { macsPerSecond: 5e10, overheadSeconds: 0.05 };

test('isotropic 1x1x1 mm, 36x50x35 (MSD hippocampus, 260 cases): nnU-Net 3d_fullres values', async () => {
  const p = await makePlan(fingerprint(many(260, () => ({ spacing: [1, 1, 1], shape: [36, 50, 35], croppedShape: [36, 50, 35] }))));
  // target = median spacing [1,1,1]; initial patch 256^3 clipped to the median shape [36,50,35].
  assert.deepEqual(p.targetSpacing, [1, 1, 1]);
  assert.deepEqual(p.medianShape, [36, 50, 35]);
  // Pooling while every axis >= 8: 36,50,35 -> 18,25,18 -> 9,13,9 -> 5,7,5 (stop): 3 poolings per axis,
  // 4 stages, patch padded to multiples of 8: [40, 56, 40] (nnU-Net's published Dataset004 plan).
  assert.deepEqual(p.patchSize, [40, 56, 40]);
  assert.deepEqual(p.network.strides, [
    [1, 1, 1],
    [2, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
  ]);
  assert.deepEqual(p.network.kernelSizes, [
    [3, 3, 3],
    [3, 3, 3],
    [3, 3, 3],
    [3, 3, 3],
  ]);
  assert.deepEqual(p.network.features, [32, 64, 128, 256]);
  // Batch: memory allows far more; the 5% cap binds: round(0.05 * 36*50*35 * 260 / (40*56*40)) = round(9.14) = 9.
  assert.equal(p.batchSize, 9);
  assert.equal(p.dims, '3d_fullres');
  assert.equal(p.resampling.separateZ, false);
  assert.equal(p.augmentation.dummy2d, false);
  assert.deepEqual(p.augmentation.rotation.maxDegrees, [30, 30, 30]);
  assert.equal(p.epochs * p.iterationsPerEpoch, 1000 * 250);
  assert.equal(p.normalization[0]!.scheme, 'zscore');
  assert.equal(p.normalization[0]!.useMaskForNorm, false);
});

test('anisotropic 0.7x0.7x5 mm, 512x512x40: z keeps 5 mm, is pooled late with kernel 1 first', async () => {
  const f = fingerprint(
    many(10, () => ({ spacing: [5, 0.7, 0.7], shape: [40, 512, 512], croppedShape: [40, 512, 512] })),
    ['CT'],
  );
  // 5 > 3 * 0.7 and 40 * 3 < 512: anisotropic; 10th percentile of z spacings = 5 (all equal) >= 0.7: stays 5.
  const p = await makePlan(f);
  assert.deepEqual(p.targetSpacing, [5, 0.7, 0.7]);
  assert.deepEqual(p.medianShape, [40, 512, 512]);
  // Topology on spacing [5, .7, .7]: z/min = 7.1, 3.6 -> not pooled at strides 1-2 (kernel 1); after two
  // in-plane poolings y,x are 2.8 mm, 5/2.8 < 2 -> z pools from stride 3 on with kernel 3.
  assert.deepEqual(p.network.strides.slice(0, 4), [
    [1, 1, 1],
    [1, 2, 2],
    [1, 2, 2],
    [2, 2, 2],
  ]);
  assert.deepEqual(p.network.kernelSizes.slice(0, 3), [
    [1, 3, 3],
    [1, 3, 3],
    [3, 3, 3],
  ]);
  p.patchSize.forEach((s, a) => assert.equal(s % p.network.strides.reduce((m, st) => m * st[a]!, 1), 0));
  // The reference memory estimate forced the patch down from [40, 512, 512]; batch at the minimum 2.
  assert.ok(p.patchSize[1]! < 512 && p.patchSize[0]! <= 40);
  assert.equal(p.batchSize, 2);
  assert.equal(p.resampling.separateZ, true);
  assert.equal(p.augmentation.dummy2d, true); // max(patch)/patch_z > 3: in-plane rotation only
  assert.deepEqual(p.augmentation.rotation.maxDegrees, [180, 0, 0]);
  assert.deepEqual(p.augmentation.lowResolution.ignoreAxes, [0]);
  // CT: clip to the foreground 0.5/99.5 percentiles, z-score with the foreground mean/std.
  assert.deepEqual(p.normalization[0], { channel: 'CT', scheme: 'ct', useMaskForNorm: false, clip: [-50, 400], mean: 100, std: 20 });
});

test('anisotropy rule: the coarse axis takes the 10th percentile of its spacings', () => {
  const zs = [2.5, 3, 5, 5, 5, 5, 5, 5, 5, 5];
  // median z = 5 -> anisotropic; 10th percentile (linear) of sorted zs: 2.5 + 0.9 * (3 - 2.5) = 2.95.
  const t = targetSpacingOf({ cases: zs.map((z, i) => ({ id: String(i), spacing: [z, 0.7, 0.7], shape: [40, 512, 512], croppedShape: [40, 512, 512] })) });
  assert.ok(Math.abs(t[0] - 2.95) < 1e-9);
  // Not anisotropic in voxels (z has 200 >= 512 / 3): the median is kept.
  const t2 = targetSpacingOf({ cases: zs.map((z, i) => ({ id: String(i), spacing: [z, 0.7, 0.7], shape: [200, 512, 512], croppedShape: [200, 512, 512] })) });
  assert.equal(t2[0], 5);
  // Topology on the clipped initial patch [68, 414, 414] at [2.95, .7, .7]: z waits two poolings
  // (2.95/0.7 = 4.2, 2.95/1.4 = 2.1), then pools while >= 8: 68,34,17,9 -> 4 poolings (pad to 80);
  // y,x: 414,207,104,52,26,13,7 -> 6 poolings (pad to 448).
  const topo = poolAndConvProps([2.95, 0.7, 0.7], [68, 414, 414]);
  assert.deepEqual(topo.strides, [
    [1, 1, 1],
    [1, 2, 2],
    [1, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
  ]);
  assert.deepEqual(topo.patchSize, [80, 448, 448]);
  assert.deepEqual(topo.kernelSizes[0], [1, 3, 3]);
  assert.deepEqual(topo.kernelSizes[2], [3, 3, 3]);
});

test('2D 512x512 (ISBI-like, 30 slices): 7 poolings, features capped at 512, mask-for-norm rule', async () => {
  const p = await makePlan(
    fingerprint(
      many(30, () => ({ spacing: [1, 1, 1], shape: [1, 512, 512], croppedShape: [1, 512, 512] })),
      ['EM'],
      2,
      0.6,
    ),
  );
  assert.equal(p.dims, '2d');
  // 2048^2 initial clipped to 512^2; 512 -> 4 takes 7 poolings; features 32..512 capped.
  assert.deepEqual(p.patchSize, [512, 512]);
  assert.equal(p.network.strides.length, 8);
  assert.deepEqual(p.network.features, [32, 64, 128, 256, 512, 512, 512, 512]);
  // 5% cap: round(0.05 * 512*512*30 / 512^2) = round(1.5) = 2.
  assert.equal(p.batchSize, 2);
  assert.equal(p.network.dims, 2);
  // Cropping to nonzero left 60% (< 75%): z-score inside the nonzero mask.
  assert.equal(p.normalization[0]!.useMaskForNorm, true);
  assert.deepEqual(p.augmentation.mirror.axes, [0, 1]);
});

test('CPU budget: a smaller budget never gives a bigger network; iterations fill the time', async () => {
  const f = fingerprint(many(260, () => ({ spacing: [1, 1, 1], shape: [36, 50, 35], croppedShape: [36, 50, 35] })));
  const big = await makePlan(f, { budget: { minutes: 600, cores: 2, memoryGiB: 8 }, throughput });
  const small = await makePlan(f, { budget: { minutes: 10, cores: 2, memoryGiB: 8 }, throughput });
  const cost = (p: typeof big) => p.network.features[0]! * p.patchSize.reduce((a, b) => a * b, 1) * p.batchSize;
  assert.ok(cost(small) <= cost(big));
  assert.ok(small.network.features[0]! >= 8 && big.network.features[0]! <= 32);
  for (const p of [big, small]) {
    const b = p.budget!;
    const total = p.iterationsPerEpoch * p.epochs;
    assert.ok(total * b.stepSeconds <= b.minutes * 60, 'iterations fit in the budget');
    assert.ok(total * b.stepSeconds >= b.minutes * 60 * 0.5, 'and use most of it');
  }
  assert.deepEqual(big.reference.patchSize, [40, 56, 40]);
});

test("validation time: the trainer's pass over a fold's validation cases after each epoch is counted and kept a small share of the epoch", async () => {
  // Tiles at half-patch steps: 36 -> 2, 50 -> 3, 35 -> 4 for a 24x28x16 patch; a forward pass is a third of a step per batch element.
  assert.equal(validationSeconds([24, 28, 16], 2, 0.3, [36, 50, 35], 52), (52 * 24 * 0.3) / 6);
  // 2D: every slice of the median case, tiles in plane.
  assert.equal(validationSeconds([32, 32], 4, 0.12, [30, 64, 40], 10), (10 * 30 * 3 * 2 * 0.12) / 12);
  const f = fingerprint(many(260, () => ({ spacing: [1, 1, 1], shape: [36, 50, 35], croppedShape: [36, 50, 35] })));
  // A slow machine and a short budget: small patches, many tiles, 52 validation cases per pass.
  const shares: [number, number, number][] = [];
  for (const minutes of [5, 10, 60]) {
    const p = await makePlan(f, { budget: { minutes, cores: 2, memoryGiB: 8 }, throughput: { macsPerSecond: 2e9, overheadSeconds: 0.05 } });
    const b = p.budget!;
    const cases = p.training.epochValidationCases ?? 52;
    assert.ok(cases >= 1 && cases <= 52);
    assert.equal(b.validationSeconds, validationSeconds(p.patchSize, p.batchSize, b.stepSeconds, p.medianShape, cases));
    const epoch = p.iterationsPerEpoch * b.stepSeconds;
    assert.ok(
      cases === 1 || b.validationSeconds! / (epoch + b.validationSeconds!) <= VALIDATION_SHARE + 1e-9,
      `${minutes} min: validation ${b.validationSeconds} s of a ${epoch} s epoch`,
    );
    const spent = p.epochs * (epoch + b.validationSeconds!);
    assert.ok(spent <= minutes * 60 * 0.85 + 1e-9, `${minutes} min: training and validation fit: ${spent} s`);
    assert.ok(spent >= minutes * 60 * 0.85 * 0.5, `${minutes} min: and use most of the budget: ${spent} s`);
    shares.push([minutes, cases, p.epochs]);
  }
  // The shortest budget validates on a subset; longer ones on no fewer cases.
  assert.ok(shares[0]![1] < 52 && shares[0]![1] <= shares[1]![1] && shares[1]![1] <= shares[2]![1], JSON.stringify(shares));
  // A fast machine validates on every case of the fold.
  const fast = await makePlan(f, { budget: { minutes: 60, cores: 2, memoryGiB: 8 }, throughput });
  assert.equal(fast.training.epochValidationCases, undefined);
  assert.ok(fast.epochs >= 5, `${fast.epochs} epochs`);
});

test('step timer: a real step 3x slower than the MAC model gives a cheaper plan whose iterations fit the measured time', async () => {
  const f = fingerprint(many(260, () => ({ spacing: [1, 1, 1], shape: [36, 50, 35], croppedShape: [36, 50, 35] })));
  const budget = { minutes: 30, cores: 2, memoryGiB: 8 };
  const plain = await makePlan(f, { budget, throughput });
  // A synthetic machine where every step costs 3x the model's prediction.
  const predicted = (c: { patchSize: number[]; batchSize: number; features: number[] }) => {
    const p = plain.budget!;
    const scale = c.patchSize.reduce((a, b) => a * b, 1) * c.batchSize * c.features[0]! ** 2;
    const ref = plain.patchSize.reduce((a, b) => a * b, 1) * plain.batchSize * plain.network.features[0]! ** 2;
    return p.overheadSeconds + (p.stepSeconds - p.overheadSeconds) * (scale / ref);
  };
  const timed: number[][] = [];
  const slow = await makePlan(f, {
    budget,
    throughput,
    stepTimer: (n, patchSize, batchSize) => {
      timed.push(patchSize);
      assert.equal(n.architecture, 'unet');
      return 3 * predicted({ patchSize, batchSize, features: n.features });
    },
  });
  const cost = (p: typeof plain) => p.network.features[0]! ** 2 * p.patchSize.reduce((a, b) => a * b, 1) * p.batchSize;
  assert.ok(cost(slow) < cost(plain), 'the slower machine gets a cheaper network or patch');
  const cal = slow.budget!.calibration!;
  assert.ok(cal.length >= 1 && cal.length <= 3 && cal.length === timed.length);
  assert.ok(Math.abs(cal[0]!.measuredSeconds / cal[0]!.predictedSeconds - 3) < 1e-9);
  const total = slow.iterationsPerEpoch * slow.epochs;
  assert.ok(total * slow.budget!.stepSeconds <= budget.minutes * 60 * 0.85 + 1e-9, 'the iterations fit the measured step time');
  // A timer that agrees with the model changes nothing.
  const same = await makePlan(f, { budget, throughput, stepTimer: (n, patchSize, batchSize) => predicted({ patchSize, batchSize, features: n.features }) });
  assert.deepEqual(same.patchSize, plain.patchSize);
  assert.deepEqual(same.network.features, plain.network.features);
  assert.equal(same.budget!.calibration!.length, 1);
  // Slow only for the first (largest) candidate: the rounds move away from it and never come back.
  const first = plain.patchSize.join('x');
  const oneSlow = await makePlan(f, {
    budget,
    throughput,
    stepTimer: (n, patchSize, batchSize) =>
      (patchSize.join('x') === first && n.features[0] === plain.network.features[0] && batchSize === plain.batchSize ? 3 : 1) *
      predicted({ patchSize, batchSize, features: n.features }),
  });
  assert.notDeepEqual([oneSlow.patchSize, oneSlow.network.features[0], oneSlow.batchSize], [plain.patchSize, plain.network.features[0], plain.batchSize]);
  assert.ok(oneSlow.iterationsPerEpoch * oneSlow.epochs * oneSlow.budget!.stepSeconds <= budget.minutes * 60 * 0.85 + 1e-9);
});

test('step timer: a machine 2x faster than the MAC model (a bf16 step, say) gets a larger network or patch, timed, whose iterations fit', async () => {
  const f = fingerprint(many(260, () => ({ spacing: [1, 1, 1], shape: [36, 50, 35], croppedShape: [36, 50, 35] })));
  const budget = { minutes: 30, cores: 2, memoryGiB: 8 };
  // A slow throughput model, so that the nnU-Net reference network is out of reach at first.
  const slowModel = { macsPerSecond: 1e10, overheadSeconds: 0.05 };
  const plain = await makePlan(f, { budget, throughput: slowModel });
  assert.match(plain.budget!.note, /^best candidate/, 'the model itself finds a candidate that fits');
  assert.notDeepEqual([plain.patchSize, plain.network.features[0]], [plain.reference.patchSize, plain.reference.features[0]]);
  const step = (patchSize: number[], batchSize: number, width: number) =>
    slowModel.overheadSeconds +
    (plain.budget!.stepSeconds - slowModel.overheadSeconds) *
      ((patchSize.reduce((a, b) => a * b, 1) * batchSize * width ** 2) /
        (plain.patchSize.reduce((a, b) => a * b, 1) * plain.batchSize * plain.network.features[0]! ** 2));
  const timed = new Map<string, number>();
  const fast = await makePlan(f, {
    budget,
    throughput: slowModel,
    stepTimer: (n, patchSize, batchSize) => {
      const t = step(patchSize, batchSize, n.features[0]!) / 2;
      timed.set(`${patchSize.join('x')} ${batchSize} ${n.features[0]}`, t);
      return t;
    },
  });
  const cost = (p: typeof plain) => p.network.features[0]! ** 2 * p.patchSize.reduce((a, b) => a * b, 1) * p.batchSize;
  assert.ok(
    cost(fast) > cost(plain),
    `${fast.patchSize} w${fast.network.features[0]} b${fast.batchSize} vs ${plain.patchSize} w${plain.network.features[0]} b${plain.batchSize}`,
  );
  const own = timed.get(`${fast.patchSize.join('x')} ${fast.batchSize} ${fast.network.features[0]}`);
  assert.equal(fast.budget!.stepSeconds, own, 'the chosen network was timed');
  assert.ok(fast.iterationsPerEpoch * fast.epochs * own! <= budget.minutes * 60 * 0.85 + 1e-9);
});

test('real throughput measurement and plan file validation', async () => {
  const f = fingerprint(
    many(4, () => ({ spacing: [1, 1, 1], shape: [1, 64, 64], croppedShape: [1, 64, 64] })),
    ['EM'],
    2,
  );
  const p = await makePlan(f, { budget: { minutes: 1, cores: 2, memoryGiB: 4 } });
  assert.ok(p.budget!.macsPerSecond > 1e8 && p.budget!.stepSeconds > 0);
  const dir = mkdtempSync(join(tmpdir(), 'medseg-plan-'));
  try {
    const path = join(dir, 'plan.json');
    await savePlan(path, p);
    assert.deepEqual(loadPlan(path), p);
    const edit = (mut: (q: any) => void) => {
      const q = JSON.parse(JSON.stringify(p));
      mut(q);
      writeFileSync(path, JSON.stringify(q));
      return () => loadPlan(path);
    };
    assert.throws(
      edit((q) => (q.patchSize = [q.patchSize[0] + 1, q.patchSize[1]])),
      /patchSize\[0\] = \d+ is not divisible by/,
    );
    assert.throws(
      edit((q) => (q.augmentation.noise.p = 2)),
      /augmentation\.noise\.p/,
    );
    assert.throws(
      edit((q) => (q.network.numClasses = 5)),
      /numClasses/,
    );
    assert.throws(
      edit((q) => (q.dims = '3d')),
      /dims/,
    );
    assert.throws(
      edit((q) => (q.inference = { mirror: 'yes', stepFraction: 0.5 })),
      /inference\.mirror/,
    );
    assert.throws(
      edit((q) => (q.inference = { mirror: true, stepFraction: 0 })),
      /inference\.stepFraction/,
    );
    assert.doesNotThrow(edit((q) => (q.inference = { mirror: true, stepFraction: 0.5, transpose: true })));
    writeFileSync(path, '{');
    assert.throws(() => loadPlan(path), /cannot read the plan/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
