import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openDatabase } from './db.ts';
import { JobStore, type NewJob } from './jobs.ts';
import { tempDir } from '../testing/fixture.ts';

function setup(maxAttempts = 3) {
  let clock = 1_000_000;
  const db = openDatabase(join(tempDir(), 'q.sqlite'));
  const jobs = new JobStore(db, { now: () => clock, maxAttempts });
  const advance = (ms: number) => {
    clock += ms;
  };
  const job = (id: string): NewJob => ({ id, model: 'm', modelVersion: 'v', inputPath: `uploads/${id}.nii`, inputFormat: 'nifti', keyId: 'k' });
  return { db, jobs, advance, job, now: () => clock };
}

test('the database is in WAL mode', () => {
  const { db } = setup();
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
});

// The queue's behaviour is tested on both stores in queue.test.ts; here, what is SQLite's own.

test('a schema-1 database gains the input reference and output columns and keeps its jobs', () => {
  const { job } = setup();
  const path = join(tempDir(), 'v1.sqlite');
  const old = new Database(path);
  old.exec(`CREATE TABLE jobs (id TEXT PRIMARY KEY, model TEXT NOT NULL, model_version TEXT NOT NULL, input_path TEXT NOT NULL,
    input_format TEXT NOT NULL, state TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT, lease_until INTEGER, result_path TEXT, error TEXT, key_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    started_at INTEGER, finished_at INTEGER)`);
  old.exec(
    `INSERT INTO jobs (id, model, model_version, input_path, input_format, state, key_id, created_at) VALUES ('old', 'm', 'v', 'uploads/old.nii', 'nifti', 'queued', 'k', 1)`,
  );
  old.pragma('user_version = 1');
  old.close();
  const db = openDatabase(path);
  try {
    assert.equal(db.pragma('user_version', { simple: true }), 2);
    const store = new JobStore(db);
    assert.deepEqual([store.get('old')!.inputRef, store.get('old')!.output, store.get('old')!.state], [null, null, 'queued']);
    store.submit({ ...job('new'), inputRef: '{}' });
    assert.equal(store.get('new')!.inputRef, '{}');
  } finally {
    db.close();
  }
});
