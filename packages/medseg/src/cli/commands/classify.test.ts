/**
 * `medseg classify` end to end as a user runs it: train a tiny ResNet on a
 * small PneumoniaMNIST subset (one epoch), predict the test split to CSV
 * with Grad-CAM PNGs, explain one class with Grad-CAM++ (a folder that is
 * not a classifier is a typed error: pipeline/classify.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { runMedseg } from '../../testing/cli.ts';
import { parseCsv } from '../../util/csv.ts';

const dir = mkdtempSync(join(tmpdir(), 'medseg-classify-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('medseg classify: train -> predict (CSV + Grad-CAM) -> explain on a tiny subset', () => {
  const data = dataPath('pneumoniamnist', 'pneumoniamnist.npz');
  const model = join(dir, 'model');
  const tr = runMedseg(['classify', 'train', data, '--out', model, '--width', '4', '--epochs', '1', '--limit', '32', '--batch-size', '16', '--json']);
  assert.equal(tr.status, 0, tr.stderr);
  const summary = JSON.parse(tr.stdout) as { ok: boolean; metrics: { test: { auc: number; accuracy: number } }; threshold: number };
  assert.ok(summary.ok && summary.metrics.test.auc >= 0 && summary.metrics.test.auc <= 1);
  assert.ok(existsSync(join(model, 'classifier.json')) && existsSync(join(model, 'model_best.safetensors')));

  const csv = join(dir, 'pred.csv');
  const pr = runMedseg(['classify', 'predict', model, data, '--out', csv, '--limit', '8', '--gradcam', join(dir, 'cam')]);
  assert.equal(pr.status, 0, pr.stderr);
  assert.match(pr.stdout, /8 cases/);
  const rows = parseCsv(readFileSync(csv, 'utf8'));
  assert.deepEqual(rows[0], ['id', 'p_0', 'p_1', 'predicted', 'label']);
  assert.equal(rows.length, 9);
  for (const r of rows.slice(1)) {
    const p1 = Number(r[2]);
    assert.ok(Math.abs(Number(r[1]) + p1 - 1) < 1e-4);
    assert.equal(Number(r[3]), p1 >= summary.threshold ? 1 : 0, 'predicted class follows the threshold chosen on val');
  }
  assert.equal(readdirSync(join(dir, 'cam')).filter((f) => f.endsWith('_gradcam.png')).length, 8);

  const ex = runMedseg(['classify', 'explain', model, data, '--out', join(dir, 'explain'), '--split', 'val', '--limit', '2', '--class', '1', '--plus-plus']);
  assert.equal(ex.status, 0, ex.stderr);
  assert.deepEqual(readdirSync(join(dir, 'explain')).sort(), ['val_0_gradcam.png', 'val_1_gradcam.png']);
});
