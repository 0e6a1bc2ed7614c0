import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPath } from '../testing/data.ts';
import { makeBatch } from './batch.ts';
import { readDataset } from './dataset.ts';
import { importMsdHippocampus } from './import.ts';
import { BatchLoader } from './loader.ts';
import { defaultAugmentation } from '../plan/complete.ts';
import { loadPreprocessed, preprocessDataset } from './preprocess.ts';
import { mixSeed, Rng } from '../util/random.ts';
import { samplePatch } from './sampler.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-loader-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const patchSize = [40, 56, 40];
const plan = { patchSize, batchSize: 3, augmentation: defaultAugmentation(3, patchSize), oversampleForeground: 0.33 };

async function prepared() {
  const ds = readDataset(await importMsdHippocampus(dataPath('msd-hippocampus'), join(tmp, 'hippo'), { limit: 4 }));
  const dir = join(tmp, 'pre');
  const planPart = {
    dims: '3d_fullres' as const,
    targetSpacing: [1, 1, 1] as [number, number, number],
    channels: ['MRI'],
    labels: { 0: 'bg', 1: 'a', 2: 'p' },
    normalization: [{ channel: 'MRI', scheme: 'zscore' as const, useMaskForNorm: false }],
    resampling: { image: 'bspline3' as const, label: 'onehot-linear' as const, separateZ: false, anisotropyThreshold: 3 },
  };
  const { ids } = await preprocessDataset(ds, planPart, dir);
  return { dir, ids };
}
const ready = prepared();

test('sampler: ~1/3 of patches centred on foreground, padded where the case is smaller than the patch', async () => {
  const { dir, ids } = await ready;
  const c = await loadPreprocessed(dir, ids[0]!);
  const rng = new Rng(1);
  let forced = 0,
    centreFg = 0,
    randomFg = 0,
    randomN = 0;
  const N = 600;
  for (let i = 0; i < N; i++) {
    const p = samplePatch(c, [16, 16, 16], 0.33, rng);
    const centre = (8 * 16 + 8) * 16 + 8;
    if (p.forcedForeground) {
      forced++;
      if (p.label[centre]! > 0) centreFg++;
    } else {
      randomN++;
      if (p.label[centre]! > 0) randomFg++;
    }
  }
  assert.ok(Math.abs(forced / N - 0.33) < 0.06, `forced rate ${forced / N}`);
  // A forced patch is centred on a foreground voxel (unless clamped at the border); a random one rarely is.
  assert.ok(centreFg / forced > 0.9, `forced centre foreground ${centreFg / forced}`);
  assert.ok(randomFg / randomN < 0.5, `random centre foreground ${randomFg / randomN}`);
  // Padding: a patch bigger than the case has zero rows.
  assert.ok(c.shape[0] < 40);
  const p = samplePatch(c, [64, 64, 64], 0, new Rng(2));
  assert.equal(p.image.length, 64 ** 3);
  assert.ok(p.image.subarray(0, 64 * 64).every((v) => v === 0));
});

test('loader: worker threads give batches of the right shapes, the same sequence for a seed whatever the worker count', async () => {
  const { dir, ids } = await ready;
  const run = async (workers: number, seed: number, n: number) => {
    const l = new BatchLoader({ dir, ids, plan, workers, prefetch: 3, seed });
    const out = [];
    try {
      for (let i = 0; i < n; i++) out.push(await l.next());
    } finally {
      await l.close();
    }
    return { out };
  };
  const a = await run(2, 11, 4);
  const b = await run(1, 11, 4);
  const c = await run(2, 12, 2);
  for (const batch of a.out) {
    assert.deepEqual(batch.shape, [3, 1, 40, 56, 40]);
    assert.equal(batch.image.length, 3 * 40 * 56 * 40);
    assert.equal(batch.label.length, 3 * 40 * 56 * 40);
    assert.ok(batch.label.every((v) => v <= 2));
  }
  a.out.forEach((x, i) => {
    assert.deepEqual(x.image, b.out[i]!.image);
    assert.deepEqual(x.label, b.out[i]!.label);
  });
  assert.notDeepEqual(a.out[0]!.image, c.out[0]!.image);
  // The worker's batch equals the same batch built in this thread.
  const cases = await Promise.all(ids.map((id) => loadPreprocessed(dir, id)));
  assert.deepEqual(makeBatch(cases, plan, mixSeed(11, 1)).image, a.out[1]!.image);
});

test('loader: a 2D plan with skeletonClasses gets the tubed skeletons made in the workers, the patches unchanged', async () => {
  const { dir, ids } = await ready;
  const cases = await Promise.all(ids.map((id) => loadPreprocessed(dir, id)));
  const patch2d = [56, 40];
  const plan2d = { patchSize: patch2d, batchSize: 3, augmentation: defaultAugmentation(2, patch2d), oversampleForeground: 0.33 };
  const l = new BatchLoader({ dir, ids, plan: plan2d, workers: 2, seed: 7, batch: { skeletonClasses: 3 } });
  try {
    for (let k = 0; k < 3; k++) {
      const got = await l.next();
      const here = makeBatch(cases, plan2d, mixSeed(7, k), true, { skeletonClasses: 3 });
      assert.deepEqual(got.image, makeBatch(cases, plan2d, mixSeed(7, k)).image);
      assert.deepEqual(got.label, here.label);
      assert.deepEqual(got.skeleton, here.skeleton);
      assert.equal(got.skeleton!.length, 3 * 3 * 56 * 40);
    }
  } finally {
    await l.close();
  }
  // A 3D plan cannot have them: the worker's error reaches next().
  const l3 = new BatchLoader({ dir, ids, plan, workers: 1, seed: 7, batch: { skeletonClasses: 3 } });
  try {
    await assert.rejects(l3.next(), /skeleton-recall targets are 2D/);
  } finally {
    await l3.close();
  }
});

test('loader: with a consumer slower than the workers, prefetched batches are ready and next() hardly waits', async () => {
  const { dir, ids } = await ready;
  const cases = await Promise.all(ids.map((id) => loadPreprocessed(dir, id)));
  // The time one batch takes to build here sets the consumer's pace: three times that per batch. A loader
  // that built batches only on demand would make next() wait about one build per batch, far above the bound.
  const t0 = performance.now();
  makeBatch(cases, plan, mixSeed(5, 0));
  const consumerMs = 3 * (performance.now() - t0) + 100;
  const l = new BatchLoader({ dir, ids, plan, workers: 2, prefetch: 3, seed: 5 });
  try {
    await l.next();
    // The first batch waits for the workers to start and build it.
    const firstWait = l.waitMs;
    assert.ok(firstWait > 0, `first wait ${firstWait} ms`);
    const n = 4;
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, consumerMs));
      await l.next();
    }
    const laterWait = l.waitMs - firstWait;
    assert.ok(
      laterWait < 0.1 * n * consumerMs,
      `next() waited ${laterWait.toFixed(0)} ms over ${n} batches; the consumer spent ${(n * consumerMs).toFixed(0)} ms`,
    );
  } finally {
    await l.close();
  }
});
