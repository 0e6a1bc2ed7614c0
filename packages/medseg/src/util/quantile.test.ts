import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, percentileSorted, quantile } from './quantile.ts';
import { seededRandom } from './random.ts';
import { runPython } from '../testing/python.ts';

test('quantiles match numpy.percentile (linear) on random lists of every small length', () => {
  const rand = seededRandom(5);
  const lists = Array.from({ length: 12 }, (_, n) => Array.from({ length: n + 1 }, () => Math.round(rand() * 1000) / 10));
  const qs = [0, 0.5, 5, 25, 50, 95, 99.5, 100];
  const want = JSON.parse(
    runPython(
      [
        '-c',
        'import sys,json,numpy as np; L=json.load(sys.stdin); print(json.dumps([[float(np.percentile(x,q)) for q in %s] for x in L]))'.replace(
          '%s',
          JSON.stringify(qs),
        ),
      ],
      {
        input: JSON.stringify(lists),
      },
    ),
  ) as number[][];
  lists.forEach((xs, i) => {
    const sorted = [...xs].sort((a, b) => a - b);
    qs.forEach((q, j) => assert.ok(Math.abs(percentileSorted(sorted, q) - want[i]![j]!) < 1e-9, `list ${i} q ${q}`));
    assert.ok(Math.abs(median(xs) - quantile(xs, 0.5)) === 0);
  });
});

test('quantile edge cases: empty is NaN, equal infinite neighbours stay infinite', () => {
  assert.ok(Number.isNaN(median([])));
  assert.equal(percentileSorted([1, Infinity, Infinity], 95), Infinity);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});
