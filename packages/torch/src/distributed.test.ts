import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DistributedError, ProcessGroup, freePort } from './index.ts';

const fixture = fileURLToPath(new URL('./testing/collective-rank.ts', import.meta.url));

/** Runs `worldSize` ranks of the fixture as separate processes; resolves with each rank's JSON line (null if it printed none). */
async function runRanks(scenario: string, worldSize: number): Promise<(Record<string, unknown> | null)[]> {
  const port = await freePort();
  const runs = Array.from({ length: worldSize }, (_, rank) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, scenario, String(rank), String(worldSize), String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MEDSEG_THREADS: '1' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    return new Promise<Record<string, unknown> | null>((resolve) =>
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        const line = out.trim().split('\n').pop();
        if (!line) {
          if (signal !== 'SIGKILL') process.stderr.write(`rank ${rank} exited ${code ?? signal}: ${err}\n`);
          resolve(null);
          return;
        }
        resolve(JSON.parse(line) as Record<string, unknown>);
      }),
    );
  });
  return Promise.all(runs);
}

test('all-reduce sums, broadcast and barrier across 2 processes on loopback, without blocking the event loop', async () => {
  const results = await runRanks('sums', 2);
  for (const [rank, r] of results.entries()) {
    assert.ok(r, `rank ${rank} reported`);
    // Ranks 0 and 1: a = [r+1, 10(r+1), -r], b = [r, 2r, 0.5, r^2], summed.
    assert.deepEqual(r.a, [3, 30, -1]);
    assert.deepEqual(r.b, [1, 2, 1, 1]);
    // 2^20 ones plus 2^20 twos.
    assert.equal(r.bigSum, 3 * (1 << 20));
    // Broadcast from rank 1.
    assert.deepEqual(r.c, [101, 201]);
    assert.deepEqual(r.d, [1]);
    assert.equal(r.afterDestroy, 'destroyed');
  }
  // Rank 0 waited ~300 ms at the barrier for rank 1, and its timers ran meanwhile.
  const r0 = results[0]!;
  assert.ok((r0.barrierMs as number) >= 200, `rank 0 waited at the barrier (${String(r0.barrierMs)} ms)`);
  assert.ok((r0.ticks as number) >= 10, `rank 0's event loop ran during the barrier (${String(r0.ticks)} ticks)`);
});

/** Runs a scenario where rank 1 dies or hangs; returns the error rank 0 saw, checked to have `code`. */
async function survivorError(scenario: 'kill' | 'stop', code: string): Promise<{ code: string; message: string; ms: number }> {
  const [survivor, lost] = await runRanks(scenario, 2);
  assert.equal(lost, null);
  assert.ok(survivor, 'the surviving rank reported');
  const error = survivor.error as { code: string; message: string; ms: number } | null;
  assert.ok(error, 'the survivor saw an error');
  assert.equal(error.code, code, error.message);
  return error;
}

test('a rank killed with SIGKILL makes the collective fail on the other rank with a peer-lost error, promptly', async () => {
  const error = await survivorError('kill', 'peer-lost');
  assert.match(error.message, /allReduce: a peer left the group/);
  assert.ok(error.ms < 10_000, `failed within the timeout (${error.ms} ms)`);
});

test('a hung rank (SIGSTOP) makes the collective fail on the other rank with a timeout error after the group timeout', async () => {
  const error = await survivorError('stop', 'timeout');
  assert.ok(error.ms >= 1900 && error.ms < 8000, `failed after ${error.ms} ms with a 2000 ms timeout`);
});

test('joining a group whose other rank never comes fails with a rendezvous error after the timeout', async () => {
  const port = await freePort();
  const t0 = Date.now();
  await assert.rejects(
    ProcessGroup.join({ masterAddr: '127.0.0.1', masterPort: port, rank: 0, worldSize: 2, timeoutMs: 1000 }),
    (e: unknown) => e instanceof DistributedError && e.code === 'rendezvous' && /rank 0 of 2 could not join/.test(e.message),
  );
  const ms = Date.now() - t0;
  assert.ok(ms >= 900 && ms < 8000, `failed after ${ms} ms`);
  await assert.rejects(ProcessGroup.join({ masterAddr: '127.0.0.1', masterPort: port, rank: 2, worldSize: 2 }), RangeError);
  await assert.rejects(ProcessGroup.join({ masterAddr: '127.0.0.1', masterPort: port, rank: 0, worldSize: 2, timeoutMs: 500 }), RangeError);
});
