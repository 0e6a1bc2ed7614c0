/** Spearman's rank correlation against SciPy. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { runPythonJson } from '../../testing/python.ts';
import { seededRandom } from '../../util/random.ts';
import { spearman } from './correlation.ts';

test('spearman equals scipy.stats.spearmanr, ties included', () => {
  const rnd = seededRandom(5);
  const a = Array.from({ length: 200 }, () => Math.round(rnd() * 20));
  const b = a.map((v) => Math.round(v * 0.5 + rnd() * 10));
  const ref = runPythonJson<number>(
    ['-c', 'import json,sys; from scipy.stats import spearmanr; d=json.load(sys.stdin); print(json.dumps(float(spearmanr(d[0], d[1]).correlation)))'],
    [a, b],
  );
  assert.ok(Math.abs(spearman(a, b) - ref) < 1e-12, `${spearman(a, b)} vs ${ref}`);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
});
