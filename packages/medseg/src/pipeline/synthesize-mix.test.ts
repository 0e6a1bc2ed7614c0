import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mixTrainingIds } from './synthesize-mix.ts';

test('the id list realises the synthetic ratio', () => {
  const real = ['r1', 'r2', 'r3', 'r4'];
  const syn = ['s1', 's2'];
  assert.deepEqual(mixTrainingIds(real, syn, 0), { ids: real, realisedRatio: 0 });
  assert.deepEqual(mixTrainingIds(real, syn, 1), { ids: syn, realisedRatio: 1 });
  const half = mixTrainingIds(real, syn, 0.5);
  assert.equal(half.realisedRatio, 0.5);
  assert.equal(half.ids.filter((i) => i.startsWith('s')).length, half.ids.filter((i) => i.startsWith('r')).length);
  const quarter = mixTrainingIds(real, syn, 0.25);
  assert.ok(Math.abs(quarter.realisedRatio - 0.25) < 0.01, String(quarter.realisedRatio));
  assert.equal(quarter.ids.filter((i) => i.startsWith('s')).length / quarter.ids.length, quarter.realisedRatio);
  assert.throws(() => mixTrainingIds(real, syn, 1.5), /\[0, 1\]/);
});
