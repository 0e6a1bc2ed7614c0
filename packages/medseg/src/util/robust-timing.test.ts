import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { MIN_REPETITION_SECONDS, startLoadProbe, timeRobustly } from './robust-timing.ts';

/** Spins the CPU for about `ms` milliseconds. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a short step is repeated until a repetition lasts long enough for /proc/stat to resolve the load', async () => {
  const t = await timeRobustly(() => spin(2), { reps: 3 });
  // A 2 ms step: about MIN_REPETITION_SECONDS / 2 ms steps per repetition (fewer when the sizing step ran long).
  assert.ok(t.stepsPerRepetition >= 10 && t.stepsPerRepetition <= Math.ceil(MIN_REPETITION_SECONDS / 0.002), `steps per repetition ${t.stepsPerRepetition}`);
  assert.ok(t.seconds >= 0.0019 && t.seconds < 0.004, `seconds per step ${t.seconds}`);
  assert.ok(t.samples.length >= t.loaded + 3, `${t.samples.length} repetitions, ${t.loaded} loaded`);
  const long = await timeRobustly(() => spin(150), { reps: 2, warmup: 0 });
  assert.equal(long.stepsPerRepetition, 1);
});

test('other processes busy on every core make repetitions count as loaded; the median of the clean ones is kept once the load is gone', async () => {
  const hogs: ChildProcess[] = [];
  try {
    for (let i = 0; i < 2; i++) hogs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500));
    const probe = startLoadProbe();
    spin(300);
    assert.ok(probe.othersShare() > 0.25, `others' share under two hogs: ${probe.othersShare()}`);
    const loaded = await timeRobustly(() => spin(20), { reps: 3, maxSeconds: 1, pauseSeconds: 0.05 });
    assert.ok(loaded.loaded > 0, 'repetitions under load are discarded');
    setTimeout(() => hogs.forEach((h) => h.kill('SIGKILL')), 300);
    const after = await timeRobustly(() => spin(20), { reps: 3, maxSeconds: 20, pauseSeconds: 0.05 });
    assert.ok(after.clean, 'clean repetitions once the hogs are gone');
    assert.ok(after.seconds < 0.03, `median clean repetition ${after.seconds}`);
    assert.ok(after.fastest <= after.seconds, 'the fastest clean repetition is no slower than the median');
  } finally {
    hogs.forEach((h) => h.kill('SIGKILL'));
  }
});
