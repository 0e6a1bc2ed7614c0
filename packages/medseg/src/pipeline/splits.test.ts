import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { kFoldSplits, readFoldSplit } from './splits.ts';

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

test("a fold's split is read from the model folder; a missing, broken or short splits.json is a typed error naming it", () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-splits-'));
  try {
    const fails = (code: string, re: RegExp) => (e: unknown) => e instanceof MedsegIoError && e.code === code && re.test(e.message);
    assert.throws(() => readFoldSplit(dir, 0), fails('NOT_FOUND', /no splits\.json/));
    writeFileSync(join(dir, 'splits.json'), '[{"train": ["a"], "val": ["b"]}');
    assert.throws(() => readFoldSplit(dir, 0), fails('CORRUPT', /cannot read the splits/));
    writeFileSync(
      join(dir, 'splits.json'),
      JSON.stringify([
        { train: ['a', 'c'], val: ['b'] },
        { train: 'a', val: [] },
      ]),
    );
    assert.deepEqual(readFoldSplit(dir, 0), { train: ['a', 'c'], val: ['b'] });
    assert.throws(() => readFoldSplit(dir, 1), fails('BAD_DATA', /fold 1 must list/));
    assert.throws(() => readFoldSplit(dir, 2), fails('BAD_DATA', /no fold 2 \(2 folds\)/));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
