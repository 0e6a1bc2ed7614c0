import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFileAtomic, writeFileAtomicSync, writeJsonAtomic, writeJsonAtomicSync } from './atomic-write.ts';

test('atomic writes replace the file whole and leave no temporary files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-atomic-'));
  try {
    const p = join(dir, 'a.json');
    writeFileSync(p, 'old');
    await writeFileAtomic(p, 'new contents');
    assert.equal(readFileSync(p, 'utf8'), 'new contents');
    writeFileAtomicSync(p, Uint8Array.from([1, 2, 3]));
    assert.deepEqual([...readFileSync(p)], [1, 2, 3]);
    await writeJsonAtomic(p, { a: 1 });
    assert.equal(readFileSync(p, 'utf8'), '{\n  "a": 1\n}\n');
    writeJsonAtomicSync(p, [2]);
    assert.deepEqual(JSON.parse(readFileSync(p, 'utf8')), [2]);
    assert.deepEqual(readdirSync(dir), ['a.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed atomic write keeps the old file and cleans up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-atomic-'));
  try {
    const p = join(dir, 'keep.txt');
    writeFileSync(p, 'saved');
    // A directory cannot be the rename target of a file: the write fails after the temporary file is written.
    const target = join(dir, 'sub');
    mkdirSync(join(target, 'inner'), { recursive: true });
    await assert.rejects(writeFileAtomic(target, 'data'));
    assert.throws(() => writeFileAtomicSync(target, 'data'));
    assert.equal(readFileSync(p, 'utf8'), 'saved');
    assert.deepEqual(readdirSync(dir).sort(), ['keep.txt', 'sub']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
