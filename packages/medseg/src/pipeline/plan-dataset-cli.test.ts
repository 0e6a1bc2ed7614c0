/**
 * `medseg plan` and `medseg train` through the command line: `--minutes 0`
 * is nnU-Net's full schedule, plan writes where train looks, and train uses
 * the written plan and the preprocessed cache. (plan-dataset.test.ts times
 * the machine and runs alone; these need no quiet machine.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDataset } from '../data/dataset.ts';
import { computeFingerprint } from '../data/fingerprint.ts';
import type { Plan } from '../plan/types.ts';
import { storedPlanPath } from './plan-dataset.ts';
import { resolveTrainingPlan } from './train-model.ts';
import { smallHippocampusDataset } from '../testing/tiny-hippocampus.ts';
import { runMedseg, type CliRun } from '../testing/cli.ts';

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 240_000 });
}

test(
  "--minutes 0 is nnU-Net's full schedule with SGD in plan and in train; plan writes where train looks; a folder it cannot write names --out; --skeleton-recall, --average-weights",
  { timeout: 120_000 },
  async () => {
    const dsDir = await smallHippocampusDataset(4);
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
    const blocked = await smallHippocampusDataset(2);
    writeFileSync(join(blocked, 'medseg'), 'not a folder');
    const e = medseg('plan', blocked, '--minutes', '0');
    assert.equal(e.status, 2, e.stderr);
    assert.match(e.stderr, /cannot write .*--out/);
    const elsewhere = join(out, 'elsewhere.json');
    assert.equal(medseg('plan', blocked, '--minutes', '0', '--out', elsewhere).status, 0);
    assert.ok(existsSync(elsewhere));
    // --skeleton-recall goes into a 2D plan's loss; a 3D plan refuses it by name (exit 2) and writes nothing.
    const flat = join(out, 'flat.json');
    const sr = medseg('plan', dsDir, '--minutes', '0', '--dims', '2d', '--skeleton-recall', '0.5', '--out', flat);
    assert.equal(sr.status, 0, sr.stderr);
    assert.equal((JSON.parse(readFileSync(flat, 'utf8')) as Plan).training.loss.skeletonRecall, 0.5);
    // --average-weights goes into the plan's training; a share outside [0, 1) is a usage error.
    const averaging = join(out, 'averaging.json');
    const aw = medseg('plan', dsDir, '--minutes', '0', '--average-weights', '0.75', '--out', averaging);
    assert.equal(aw.status, 0, aw.stderr);
    assert.deepEqual((JSON.parse(readFileSync(averaging, 'utf8')) as Plan).training.weightAveraging, { from: 0.75 });
    const badShare = medseg('plan', dsDir, '--minutes', '0', '--average-weights', '1.5', '--out', join(out, 'bad-share.json'));
    assert.notEqual(badShare.status, 0);
    assert.match(badShare.stderr, /expected a number in \[0, 1\)/);
    // --average-lr makes it stochastic weight averaging; alone it is refused by name (exit 2), nothing written.
    const swa = join(out, 'swa.json');
    const sw = medseg('plan', dsDir, '--minutes', '0', '--average-weights', '0.6', '--average-lr', '0.2', '--out', swa);
    assert.equal(sw.status, 0, sw.stderr);
    assert.deepEqual((JSON.parse(readFileSync(swa, 'utf8')) as Plan).training.weightAveraging, { from: 0.6, lr: 0.2 });
    const lrAlone = medseg('plan', dsDir, '--minutes', '0', '--average-lr', '0.2', '--out', join(out, 'lr-alone.json'));
    assert.equal(lrAlone.status, 2, lrAlone.stderr);
    assert.match(lrAlone.stderr, /--average-lr\) needs weight averaging/);
    assert.ok(!existsSync(join(out, 'lr-alone.json')));
    assert.match(
      medseg('plan', dsDir, '--minutes', '0', '--average-weights', '0.6', '--average-lr', '0', '--out', swa).stderr,
      /expected a number in \(0, 1\]/,
    );
    const volumetric = join(out, 'volumetric.json');
    const refused = medseg('plan', dsDir, '--minutes', '0', '--skeleton-recall', '1', '--out', volumetric);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /training\.loss\.skeletonRecall applies to 2d plans only/);
    assert.ok(!existsSync(volumetric));
  },
);

test("medseg plan, then medseg preprocess and medseg train: the model's plan is the written one and the cache is reused", { timeout: 300_000 }, async () => {
  const dsDir = await smallHippocampusDataset(6);
  // --minutes 0: no timing of this machine (other test files share its cores).
  const p = medseg('plan', dsDir, '--minutes', '0');
  assert.equal(p.status, 0, p.stderr);
  // Hand edits, part of the written plan: four steps of batch 2, and prediction without mirroring for short validation and calibration passes.
  const planned = JSON.parse(readFileSync(storedPlanPath(dsDir), 'utf8')) as Plan;
  const written = JSON.stringify({
    ...planned,
    epochs: 1,
    iterationsPerEpoch: 4,
    batchSize: 2,
    inference: { ...planned.inference, mirror: false, transpose: false },
  });
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
