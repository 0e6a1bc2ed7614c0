import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MACHINE_TIMINGS_FILE, MachineTimings, machineKey, medsegCacheDir } from './machine-timings.ts';

function counter(): { calls: number; measure: () => { value: number; clean: boolean } } {
  const c = { calls: 0, measure: () => ({ value: ++c.calls * 0.01, clean: true }) };
  return c;
}

test('a timing is measured once and then remembered, also by another instance (another process)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-timings-'));
  const c = counter();
  const a = await new MachineTimings({ engine: 'libtorch 1.13.1', dir }).remember('step x', c.measure);
  assert.deepEqual([a.value, a.remembered], [0.01, false]);
  const b = await new MachineTimings({ engine: 'libtorch 1.13.1', dir }).remember('step x', c.measure);
  assert.deepEqual([b.value, b.remembered, b.measuredAt], [0.01, true, a.measuredAt]);
  assert.equal(c.calls, 1);
  // Another key is measured; the first stays.
  await new MachineTimings({ engine: 'libtorch 1.13.1', dir }).remember('step y', c.measure);
  const f = JSON.parse(readFileSync(join(dir, MACHINE_TIMINGS_FILE), 'utf8')) as { entries: Record<string, { value: number }> };
  assert.deepEqual(Object.keys(f.entries).sort(), ['step x', 'step y']);
});

test('recalibrating measures anew and replaces the stored value; another engine starts from an empty store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-timings-'));
  const c = counter();
  await new MachineTimings({ engine: 'e1', dir }).remember('k', c.measure);
  const re = await new MachineTimings({ engine: 'e1', dir, recalibrate: true }).remember('k', c.measure);
  assert.deepEqual([re.value, re.remembered], [0.02, false]);
  assert.equal((await new MachineTimings({ engine: 'e1', dir }).remember('k', c.measure)).value, 0.02);
  const other = await new MachineTimings({ engine: 'e2', dir }).remember('k', c.measure);
  assert.deepEqual([other.value, other.remembered], [0.03, false]);
  assert.notEqual(machineKey('e1'), machineKey('e2'));
});

test('a corrupt or foreign store is an empty one and is rewritten; an unwritable folder still gives the measurement', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-timings-'));
  const path = join(dir, MACHINE_TIMINGS_FILE);
  for (const junk of ['{"machine": "x", "entr', '[1,2,3]', 'null', '{"machine": 5, "entries": []}']) {
    writeFileSync(path, junk);
    const c = counter();
    const r = await new MachineTimings({ engine: 'e', dir }).remember('k', c.measure);
    assert.deepEqual([r.value, r.remembered, c.calls], [0.01, false, 1], junk);
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { entries: Record<string, { value: number }> }).entries.k!.value, 0.01);
  }
  if (process.getuid?.() !== 0) {
    const ro = mkdtempSync(join(tmpdir(), 'medseg-timings-ro-'));
    chmodSync(ro, 0o500);
    const r = await new MachineTimings({ engine: 'e', dir: ro }).remember('k', () => ({ value: 7, clean: true }));
    assert.deepEqual([r.value, r.remembered], [7, false]);
  }
  const blocked = join(mkdtempSync(join(tmpdir(), 'medseg-timings-')), 'file');
  writeFileSync(blocked, 'a file where the folder should be');
  const r = await new MachineTimings({ engine: 'e', dir: join(blocked, 'sub') }).remember('k', () => ({ value: 7, clean: true }));
  assert.deepEqual([r.value, r.remembered], [7, false]);
});

test('the store lives in $MEDSEG_CACHE_DIR, else $XDG_CACHE_HOME/medseg, else ~/.cache/medseg', () => {
  assert.equal(medsegCacheDir({ MEDSEG_CACHE_DIR: '/a', XDG_CACHE_HOME: '/b' }), '/a');
  assert.equal(medsegCacheDir({ XDG_CACHE_HOME: '/b' }), '/b/medseg');
  assert.match(medsegCacheDir({}), /\.cache\/medseg$/);
});

test('a measurement taken under load throughout is used but not remembered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-timings-'));
  const t = new MachineTimings({ engine: 'e', dir });
  const loaded = await t.remember('k', () => ({ value: 9, clean: false }));
  assert.deepEqual([loaded.value, loaded.remembered], [9, false]);
  assert.equal(t.get('k'), undefined);
  const clean = await t.remember('k', () => ({ value: 3, clean: true }));
  assert.equal(clean.value, 3);
  assert.equal((await t.remember('k', () => ({ value: 4, clean: true }))).value, 3);
});
