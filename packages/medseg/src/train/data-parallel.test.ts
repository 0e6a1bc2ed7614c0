import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '@medseg/torch';
import { makeOptimizer, trainingStep } from './step.ts';
import { TinySegNet } from '../testing/trainer-fixture.ts';
import { globalBatch, runRanks, stepConfig, weightsOf } from '../testing/ddp-fixture.ts';

test('2 ranks x batch 1 reach the weights of 1 rank x batch 2 after 4 steps, with or without overlap, in one bucket or many', async () => {
  const steps = 4;
  torch.manualSeed(7);
  const net = new TinySegNet();
  const opt = makeOptimizer(net, stepConfig);
  for (let i = 0; i < steps; i++) {
    const b = globalBatch(i, 2);
    trainingStep(net, opt, b.image, b.label, stepConfig);
    b.image.dispose();
    b.label.dispose();
  }
  const reference = weightsOf(net);
  opt.dispose();
  // Overlapped with backward in ~50-byte buckets (several all-reduces), and after backward in one 25 MB bucket.
  for (const [bucketMB, overlap] of [
    [0.00005, 1],
    [25, 0],
  ] as const) {
    const [r0, r1] = await runRanks(() => ['steps', '1', String(steps), String(bucketMB), String(overlap)], 2);
    assert.equal(r0!.code, 0, r0!.stderr);
    assert.equal(r1!.code, 0, r1!.stderr);
    const { buckets, queuedDuringBackward, weights } = JSON.parse(r0!.stdout.trim()) as {
      buckets: number;
      queuedDuringBackward: number;
      weights: Record<string, number[]>;
    };
    if (overlap) {
      // Every bucket is queued from the gradient hooks while backward runs: the later layers' before the earlier layers' gradients exist.
      assert.ok(buckets > 2, `${buckets} buckets`);
      assert.equal(queuedDuringBackward, buckets, 'every bucket was queued from the hooks');
    } else {
      assert.equal(buckets, 1);
      assert.equal(queuedDuringBackward, 0);
    }
    assert.deepEqual(Object.keys(weights), Object.keys(reference));
    let maxDiff = 0;
    for (const [k, v] of Object.entries(reference)) v.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - weights[k]![i]!))));
    assert.ok(maxDiff < 1e-5, `max |difference| ${maxDiff} (bucketMB ${bucketMB}, overlap ${overlap})`);
  }
});
