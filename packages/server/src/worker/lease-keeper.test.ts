import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { openJobQueue } from '../store/queue.ts';
import { tempDir, waitFor } from '../testing/fixture.ts';
import { LeaseKeeper } from './lease-keeper.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the keeper renews a held lease while the main thread shows progress, lets it expire when the thread is silent, and reports it lost', async () => {
  const dbPath = join(tempDir(), 'q.sqlite');
  const q = await openJobQueue({ dbPath });
  const leaseMs = 1500;
  const keeper = new LeaseKeeper({ at: { dbPath }, leaseMs, heartbeatMs: 100, hungMs: 1000 });
  try {
    await keeper.ready();
    await q.submit({ id: 'a', model: 'm', modelVersion: 'v', inputPath: 'uploads/a.nii', inputFormat: 'nifti', keyId: 'k' });
    const first = (await q.claim('w1', leaseMs))!;
    keeper.hold(first.lease);
    // Alive for longer than a lease: the lease is still held, with the progress reported.
    for (let i = 1; i <= 20; i++) {
      keeper.alive(i / 40);
      await sleep(100);
    }
    const held = (await q.get('a'))!;
    assert.deepEqual([held.state, held.leaseOwner], ['running', 'w1']);
    assert.ok(held.leaseUntil! > Date.now(), 'renewed past the claim lease');
    assert.ok(held.progress >= 0.4, `progress ${held.progress} reported`);
    assert.equal(keeper.lost(), false);

    // Silent past hungMs: no more renewals, the lease expires and another worker takes the job.
    const second = await waitFor('the lease to expire', async () => (await q.claim('w2', 60_000)) ?? undefined, 10_000, 100);
    assert.equal(second.lease.attempt, 2);
    // The first worker's thread wakes up: the keeper's next renewal is refused and the loss is reported.
    keeper.alive(0.6);
    await waitFor('the keeper to report the lost lease', () => (keeper.lost() ? true : undefined), 5_000, 20);
    assert.equal(await q.complete(first.lease, 'results/a.a1.nii'), false);

    // A new lease starts clean.
    keeper.release();
    keeper.hold(second.lease);
    assert.equal(keeper.lost(), false);
  } finally {
    await keeper.stop();
    await q.close();
  }
});
