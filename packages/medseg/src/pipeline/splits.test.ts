import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kFoldSplits } from './splits.ts';

test('k-fold splits partition the cases: every case validated exactly once, never trained on in its fold', () => {
  const ids = Array.from({ length: 23 }, (_, i) => `case_${i}`);
  const splits = kFoldSplits(ids, 5);
  assert.equal(splits.length, 5);
  const seen = splits.flatMap((s) => s.val).sort();
  assert.deepEqual(seen, [...ids].sort());
  for (const s of splits) {
    assert.equal(s.train.length + s.val.length, ids.length);
    assert.ok(s.val.every((v) => !s.train.includes(v)));
    assert.ok(s.val.length === 4 || s.val.length === 5);
  }
  assert.deepEqual(kFoldSplits([...ids].reverse(), 5), splits, 'splits depend on the ids, not their order');
  assert.notDeepEqual(kFoldSplits(ids, 5, 1), splits, 'the seed changes the split');
});

test('too few cases for the folds is a clear error', () => {
  assert.throws(() => kFoldSplits(['a', 'b'], 5), /cannot be split into 5 folds/);
});
