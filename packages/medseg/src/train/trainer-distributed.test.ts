import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { FOLD_FILES } from '../plan/model-folder.ts';
import type { EpochLog } from './trainer.ts';
import { runRanks } from '../testing/ddp-fixture.ts';

test('a rank SIGKILLed mid-run fails the other with a clear error, and --resume continues to the weights of an uninterrupted run', async () => {
  const { checkpoint: CHECKPOINT, final: FINAL, log: LOG } = FOLD_FILES;
  const straight = mkdtempSync(join(tmpdir(), 'medseg-ddp-a-'));
  const a = await runRanks(() => ['train', straight, '0', '0'], 2);
  for (const r of a) assert.equal(r.code, 0, r.stderr);

  const killed = mkdtempSync(join(tmpdir(), 'medseg-ddp-b-'));
  let killedAt = 0;
  const b = await runRanks(
    () => ['train', killed, '0', '100'],
    2,
    (children) => {
      const poll = setInterval(() => {
        if (!existsSync(join(killed, CHECKPOINT))) return;
        clearInterval(poll);
        killedAt = Date.now();
        children[1]!.kill('SIGKILL');
      }, 50);
    },
  );
  assert.equal(b[1]!.signal, 'SIGKILL');
  assert.notEqual(b[0]!.code, 0, 'rank 0 went on without rank 1');
  assert.match(b[0]!.stderr, /DistributedError: .*a peer left the group/);
  // Rank 0 fails at its next collective (a step at most, 100 ms of batch wait here), far within the group's timeout.
  const failedAfter = b[0]!.ms - (killedAt - (Date.now() - Math.max(...b.map((r) => r.ms))));
  assert.ok(failedAfter < 10_000, `rank 0 failed ${failedAfter} ms after the kill`);
  assert.ok(!existsSync(join(killed, FINAL)), 'the kill came too late to test resuming');

  const c = await runRanks(() => ['train', killed, '1', '0'], 2);
  for (const r of c) assert.equal(r.code, 0, r.stderr);
  const weights = (dir: string) => {
    const { tensors } = torch.loadSafetensors(join(dir, FINAL));
    const out = Object.fromEntries([...tensors].map(([k, t]) => [k, t.toArray()]));
    for (const t of tensors.values()) t.dispose();
    return out;
  };
  assert.deepEqual(weights(killed), weights(straight));
  const epochs = (dir: string) =>
    readFileSync(join(dir, LOG), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as EpochLog).epoch);
  assert.deepEqual(epochs(killed), [0, 1, 2]);
  assert.deepEqual(epochs(straight), [0, 1, 2]);
});
