/**
 * One planner for `medseg plan` and `medseg train`: the same flags give the
 * same plan, also when other processes load the CPU (timings are remembered
 * per machine); the
 * stored plan is what train uses; `--minutes 0` is nnU-Net's full schedule.
 */
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDataset } from '../data/dataset.ts';
import { computeFingerprint } from '../data/fingerprint.ts';
import { importPairedFolders } from '../data/import.ts';
import type { Plan } from '../plan/types.ts';
import { dataPath } from '../testing/data.ts';
import { planDataset, storedPlanPath } from './plan-dataset.ts';
import { resolveTrainingPlan } from './train-model.ts';
import { HIPPOCAMPUS_SPLIT } from '../demo/hippocampus-split.ts';
import { runMedseg, type CliRun } from '../testing/cli.ts';

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 240_000 });
}

/** A writable copy of the first `n` MSD hippocampus cases as a medseg dataset. */
async function smallDataset(n: number): Promise<string> {
  const src = dataPath('msd-hippocampus');
  const out = mkdtempSync(join(tmpdir(), 'medseg-plan-ds-'));
  const ids = HIPPOCAMPUS_SPLIT.train.slice(0, n);
  for (const d of ['images', 'labels']) {
    mkdirSync(join(out, 'src', d), { recursive: true });
    for (const id of ids) copyFileSync(join(src, d, `${id}.nii.gz`), join(out, 'src', d, `${id}.nii.gz`));
  }
  return importPairedFolders(join(out, 'src/images'), join(out, 'src/labels'), join(out, 'dataset'), { name: 'hippo-small', channelNames: ['MRI'] });
}

/** The remembered timings in a store's text, as seconds (a step's time, or the throughput model's seconds per 1e9 MACs). */
function timingsIn(text: string): Map<string, { seconds: number; measuredAt: string }> {
  const f = JSON.parse(text) as { entries: Record<string, { value: number | { macsPerSecond: number }; measuredAt: string }> };
  return new Map(
    Object.entries(f.entries).map(([k, e]) => [k, { seconds: typeof e.value === 'number' ? e.value : 1e9 / e.value.macsPerSecond, measuredAt: e.measuredAt }]),
  );
}

/** Starts two processes that keep both CPUs busy for `ms` and exit. */
function startHogs(ms: number): { hogs: ChildProcess[]; exited: Promise<(number | null)[]> } {
  const hogs: ChildProcess[] = [];
  const exited: Promise<number | null>[] = [];
  for (let i = 0; i < 2; i++) {
    const hog = spawn(process.execPath, ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end);`], { stdio: 'ignore' });
    hogs.push(hog);
    exited.push(new Promise((resolve) => hog.on('exit', (code) => resolve(code))));
  }
  return { hogs, exited: Promise.all(exited) };
}

test('the same flags plan the same, also with two CPU hogs running: timings are measured once per machine and remembered', { timeout: 180_000 }, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'medseg-cache-'));
  const before = process.env.MEDSEG_CACHE_DIR;
  process.env.MEDSEG_CACHE_DIR = cache;
  try {
    const ds = readDataset(await smallDataset(6));
    const fingerprint = await computeFingerprint(ds);
    const choices = { minutes: 2 };
    const quiet = await planDataset({ dataset: ds, fingerprint, choices, out: null });
    assert.ok(quiet.plan.budget?.calibration?.length, 'the plan timed a real step');
    assert.match(quiet.plan.budget!.timingRule!, /median of several repetitions.*re-timed.*15% slower.*remembered in .*machine-timings.json/);
    const store = join(cache, 'machine-timings.json');
    const stored = readFileSync(store, 'utf8');
    assert.match(stored, /"throughput /);
    assert.match(stored, /"step /);
    // The precision was chosen from timed fp32 and bf16 steps (remembered like the others) where the CPU has bf16.
    assert.match(quiet.plan.precisionChoice.reason, /^(bf16|fp32): /);
    assert.equal(quiet.plan.inference.precision, quiet.plan.training.precision);
    if (torch.bf16Support().native) assert.match(stored, /"precision\\?":\\?"bf16/);

    // Planning again while two hogs load both CPUs: nothing is re-timed (the
    // store is not rewritten) and the whole plan, step times included, is the same.
    const loaded = startHogs(3000);
    try {
      const again = await planDataset({ dataset: ds, fingerprint, choices, out: null });
      assert.deepEqual(again.plan, quiet.plan);
      assert.equal(readFileSync(store, 'utf8'), stored, 'the remembered timings were used, not re-measured');
      assert.deepEqual(await loaded.exited, [0, 0]);
    } finally {
      loaded.hogs.forEach((h) => h.kill('SIGKILL'));
    }

    // --recalibrate under the same load measures anew: the robust timer waits
    // the hogs out, so each step time agrees with the idle one within the
    // spread of timing a step in another process (two hogs on two CPUs would
    // double it), and the store holds the new measurements.
    const hogged = startHogs(3000);
    try {
      const t0 = performance.now();
      await planDataset({ dataset: ds, fingerprint, choices, out: null, recalibrate: true });
      assert.ok(performance.now() - t0 > 3000, 'recalibrating timed while the hogs ran');
      assert.deepEqual(await hogged.exited, [0, 0], 'the hogs ran their three seconds');
      // Every timing measured in both runs (the throughput model always is) agrees within the spread.
      const idle = timingsIn(stored);
      let compared = 0;
      for (const [k, e] of timingsIn(readFileSync(store, 'utf8'))) {
        const q = idle.get(k);
        if (q === undefined || q.measuredAt === e.measuredAt) continue;
        compared++;
        const ratio = e.seconds / q.seconds;
        assert.ok(ratio > 0.6 && ratio < 1.6, `${k}: ${e.seconds.toPrecision(3)} under load vs ${q.seconds.toPrecision(3)} idle`);
      }
      assert.ok(compared > 0, 'recalibrating measured again what the first plan measured');
      assert.notEqual(readFileSync(store, 'utf8'), stored, 'recalibrating replaced the remembered timings');
    } finally {
      hogged.hogs.forEach((h) => h.kill('SIGKILL'));
    }
  } finally {
    if (before === undefined) delete process.env.MEDSEG_CACHE_DIR;
    else process.env.MEDSEG_CACHE_DIR = before;
  }
});

test(
  "--minutes 0 is nnU-Net's full schedule with SGD in plan and in train; plan writes where train looks; a folder it cannot write names --out",
  { timeout: 120_000 },
  async () => {
    const dsDir = await smallDataset(4);
    const r = medseg('plan', dsDir, '--minutes', '0', '--json');
    assert.equal(r.status, 0, r.stderr);
    const written = JSON.parse(readFileSync(storedPlanPath(dsDir), 'utf8')) as Plan;
    assert.equal(JSON.parse(r.stdout).plan, storedPlanPath(dsDir));
    assert.equal(written.budget, null);
    assert.equal(written.epochs, 1000);
    assert.equal(written.iterationsPerEpoch, 250);
    assert.equal(written.training.optimizer, 'sgd');
    assert.equal(written.training.timeBudgetMinutes, 0);
    // train with the same flag plans anew with the same function, and gets the same plan.
    const ds = readDataset(dsDir);
    const fp = await computeFingerprint(ds);
    const out = mkdtempSync(join(tmpdir(), 'medseg-model-'));
    const planned = await resolveTrainingPlan({ dataset: dsDir, out, minutes: 0 }, ds, fp);
    assert.equal(planned.source, 'planned');
    assert.deepEqual(planned.plan, written);
    // Without flags train takes the stored plan, even after a hand edit.
    writeFileSync(storedPlanPath(dsDir), JSON.stringify({ ...written, epochs: 7 }));
    const stored = await resolveTrainingPlan({ dataset: dsDir, out }, ds, fp);
    assert.equal(stored.source, 'stored');
    assert.equal(stored.plan.epochs, 7);
    // A dataset folder where the plan cannot be written: the error names --out, exit code 2.
    const blocked = await smallDataset(2);
    writeFileSync(join(blocked, 'medseg'), 'not a folder');
    const e = medseg('plan', blocked, '--minutes', '0');
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr, /cannot write .*--out/);
    const elsewhere = join(out, 'elsewhere.json');
    assert.equal(medseg('plan', blocked, '--minutes', '0', '--out', elsewhere).status, 0);
    assert.ok(existsSync(elsewhere));
  },
);

test("medseg plan, then medseg preprocess and medseg train: the model's plan is the written one and the cache is reused", { timeout: 300_000 }, async () => {
  const dsDir = await smallDataset(6);
  const p = medseg('plan', dsDir, '--minutes', '0.2');
  assert.equal(p.status, 0, p.stderr);
  // Prediction without mirroring keeps the final validation and calibration passes short; the edit is part of the written plan.
  const planned = JSON.parse(readFileSync(storedPlanPath(dsDir), 'utf8')) as Plan;
  const written = JSON.stringify({ ...planned, inference: { ...planned.inference, mirror: false, transpose: false } });
  writeFileSync(storedPlanPath(dsDir), written);
  const pre = medseg('preprocess', dsDir, '--json');
  assert.equal(pre.status, 0, pre.stderr);
  const { dir, computed } = JSON.parse(pre.stdout) as { dir: string; computed: number };
  assert.equal(computed, 6);
  const model = join(mkdtempSync(join(tmpdir(), 'medseg-model-')), 'model');
  const t = medseg('train', dsDir, '--out', model, '--split', writeSplit(dsDir), '--json', '--no-faithfulness');
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, /plan: the dataset's stored plan/);
  assert.match(t.stderr, new RegExp(`preprocessed 0 of 6 cases into ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.deepEqual(JSON.parse(readFileSync(join(model, 'plan.json'), 'utf8')), JSON.parse(written));
});

function writeSplit(dsDir: string): string {
  const ids = readDataset(dsDir)
    .training.map((c) => c.id)
    .sort();
  const path = join(dsDir, '..', 'split.json');
  writeFileSync(path, JSON.stringify({ train: ids.slice(0, 4), validation: ids.slice(4) }));
  return path;
}
