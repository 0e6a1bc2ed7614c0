import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '@medseg/torch';
import { FOLD_FILES } from '../plan/model-folder.ts';
import { makeOptimizer, trainingStep } from './step.ts';
import type { EpochLog } from './trainer.ts';
import { TinySegNet } from '../testing/trainer-fixture.ts';
import { globalBatch, stepConfig, weightsOf } from '../testing/ddp-fixture.ts';

const fixture = fileURLToPath(new URL('../testing/ddp-fixture.ts', import.meta.url));

interface RankRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Starts `world` ranks of the fixture; `onStart` may act on the children (kill one). */
async function runRanks(args: (port: number) => string[], world: number, onStart?: (children: ReturnType<typeof spawn>[]) => void): Promise<RankRun[]> {
  const port = await torch.freePort();
  const t0 = Date.now();
  const children = Array.from({ length: world }, (_, rank) =>
    spawn(process.execPath, ['--import', 'tsx', fixture, args(port)[0]!, String(rank), String(world), String(port), ...args(port).slice(1)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MEDSEG_THREADS: '1' },
    }),
  );
  const runs = children.map(
    (child) =>
      new Promise<RankRun>((resolve) => {
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d));
        child.stderr!.on('data', (d: Buffer) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
        });
      }),
  );
  onStart?.(children);
  return Promise.all(runs);
}

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
  // Overlapped with backward in ~200-byte buckets (several all-reduces), and after backward in one 25 MB bucket.
  for (const [bucketMB, overlap] of [
    [0.0002, 1],
    [25, 0],
  ] as const) {
    const [r0, r1] = await runRanks(() => ['steps', '1', String(steps), String(bucketMB), String(overlap)], 2);
    assert.equal(r0!.code, 0, r0!.stderr);
    assert.equal(r1!.code, 0, r1!.stderr);
    const { buckets, weights } = JSON.parse(r0!.stdout.trim()) as { buckets: number; weights: Record<string, number[]> };
    if (overlap) assert.ok(buckets > 1, `${buckets} buckets`);
    else assert.equal(buckets, 1);
    assert.deepEqual(Object.keys(weights), Object.keys(reference));
    let maxDiff = 0;
    for (const [k, v] of Object.entries(reference)) v.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - weights[k]![i]!))));
    assert.ok(maxDiff < 1e-5, `max |difference| ${maxDiff} (bucketMB ${bucketMB}, overlap ${overlap})`);
  }
});

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
