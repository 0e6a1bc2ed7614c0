import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliUsageError, describeError } from './errors.ts';
import { distributedMode, RankFailedError, type DistributedCliOptions } from './distributed-run.ts';

const base: DistributedCliOptions = { masterAddr: '127.0.0.1', distTimeout: 30, bucketMb: 25 };

test('--ranks spawns, --rank/--world-size/--master-port make one rank, contradictions are usage errors', () => {
  assert.equal(distributedMode(base), 'single');
  assert.equal(distributedMode({ ...base, ranks: 1 }), 'single');
  assert.equal(distributedMode({ ...base, ranks: 2 }), 'spawn');
  assert.equal(distributedMode({ ...base, rank: 1, worldSize: 2, masterPort: 29500 }), 'rank');
  assert.throws(() => distributedMode({ ...base, ranks: 2, rank: 0 }), CliUsageError);
  assert.throws(() => distributedMode({ ...base, rank: 0, worldSize: 2 }), /needs --rank, --world-size and --master-port/);
  assert.throws(() => distributedMode({ ...base, rank: 2, worldSize: 2, masterPort: 29500 }), /--rank 2 is not in a group of --world-size 2/);
  assert.throws(() => distributedMode({ ...base, rank: 0, worldSize: 2, masterPort: 70000 }), CliUsageError);
});

test('a failed rank is reported with the resume hint and a typed JSON error', () => {
  const r = describeError(new RankFailedError('rank 1 of 2 was killed by SIGKILL'));
  assert.equal(r.exitCode, 1);
  assert.match(r.message, /data-parallel training stopped: rank 1 of 2 was killed by SIGKILL/);
  assert.match(r.message, /--resume continues from the last checkpoint/);
  assert.deepEqual(r.json.error, { type: 'distributed', code: 'rank-failed', message: 'rank 1 of 2 was killed by SIGKILL' });
});
