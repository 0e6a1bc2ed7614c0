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

test('jobs are claimed oldest first, each by one worker, and completed once', () => {
  const { jobs, job } = setup();
  jobs.submit(job('a'));
  jobs.submit(job('b'));
  const c1 = jobs.claim('w1', 1000)!;
  const c2 = jobs.claim('w2', 1000)!;
  assert.equal(c1.job.id, 'a');
  assert.equal(c2.job.id, 'b');
  assert.equal(jobs.claim('w3', 1000), null);
  assert.equal(jobs.complete(c1.lease, 'results/a.a1.nii'), true);
  assert.equal(jobs.complete(c1.lease, 'results/a.a1.nii'), false, 'a second completion under the same lease is refused');
  assert.equal(jobs.get('a')!.state, 'done');
  assert.equal(jobs.eventCount('a', 'completed'), 1);
});

test('after a lease expires the job is claimed again; the late worker cannot record its result, the new one can', () => {
  const { jobs, advance, job } = setup();
  jobs.submit(job('a'));
  const first = jobs.claim('w1', 1000)!;
  advance(500);
  assert.equal(jobs.heartbeat(first.lease, 1000, 0.3), true);
  assert.equal(jobs.claim('w2', 1000), null, 'a renewed lease keeps the job');
  advance(1001);
  const second = jobs.claim('w2', 1000)!;
  assert.equal(second.job.id, 'a');
  assert.equal(second.lease.attempt, 2);
  // The first worker wakes up and races the second.
  assert.equal(jobs.heartbeat(first.lease, 1000, 0.9), false, 'the lost lease is reported on the next heartbeat');
  assert.equal(jobs.complete(first.lease, 'results/a.a1.nii'), false);
  assert.equal(jobs.fail(first.lease, 'late'), false);
  assert.equal(jobs.complete(second.lease, 'results/a.a2.nii'), true);
  const a = jobs.get('a')!;
  assert.equal(a.state, 'done');
  assert.equal(a.resultPath, 'results/a.a2.nii');
  assert.equal(jobs.eventCount('a', 'completed'), 1);
  assert.equal(jobs.eventCount('a', 'outcome-rejected'), 2);
});

test('a cancelled job loses its lease: heartbeats and completion are refused', () => {
  const { jobs, job } = setup();
  jobs.submit(job('a'));
  jobs.submit(job('b'));
  const c = jobs.claim('w1', 1000)!;
  assert.deepEqual(jobs.cancel('a'), { before: 'running', after: 'cancelled' });
  assert.equal(jobs.heartbeat(c.lease, 1000, 0.5), false);
  assert.equal(jobs.complete(c.lease, 'results/a.a1.nii'), false);
  assert.equal(jobs.get('a')!.state, 'cancelled');
  assert.deepEqual(jobs.cancel('b'), { before: 'queued', after: 'cancelled' });
  assert.equal(jobs.claim('w1', 1000), null, 'a cancelled job is never claimed');
  assert.deepEqual(jobs.cancel('a'), { before: 'cancelled', after: 'cancelled' });
  assert.equal(jobs.cancel('zzz'), undefined);
});

test('expired leases are requeued at start-up; a job whose workers keep dying fails after maxAttempts', () => {
  const { jobs, advance, job } = setup(2);
  jobs.submit(job('a'));
  jobs.claim('w1', 1000);
  assert.equal(jobs.requeueExpired(), 0, 'a live lease stays');
  advance(1001);
  assert.equal(jobs.requeueExpired(), 1);
  assert.equal(jobs.get('a')!.state, 'queued');
  const second = jobs.claim('w2', 1000)!;
  assert.equal(second.lease.attempt, 2);
  advance(1001);
  assert.equal(jobs.claim('w3', 1000), null, 'no third attempt');
  const a = jobs.get('a')!;
  assert.equal(a.state, 'failed');
  assert.match(a.error!, /gave up after 2 attempts/);
});

test('two connections (as two worker processes have) never claim the same job', () => {
  const { jobs, job, db, now } = setup();
  for (let i = 0; i < 20; i++) jobs.submit(job(`j${String(i).padStart(2, '0')}`));
  const other = new JobStore(openDatabase(db.name), { now });
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) {
    for (const [store, who] of [
      [jobs, 'w1'],
      [other, 'w2'],
    ] as const) {
      const c = store.claim(who, 60_000)!;
      assert.ok(!seen.has(c.job.id), `${c.job.id} claimed twice`);
      seen.add(c.job.id);
    }
  }
  assert.equal(seen.size, 20);
});

test('a job keeps its input reference and the facts of its result; a schema-1 database gains those columns and keeps its jobs', () => {
  const { jobs, job } = setup();
  jobs.submit({ ...job('r'), inputFormat: 'dicomweb', inputPath: '', inputRef: '{"studyInstanceUid":"1.2"}' });
  const c = jobs.claim('w', 1000)!;
  assert.equal(c.job.inputRef, '{"studyInstanceUid":"1.2"}');
  assert.equal(jobs.complete(c.lease, 'results/r.a1.seg.dcm', '{"segSopInstanceUid":"2.25.1"}'), true);
  assert.equal(jobs.get('r')!.output, '{"segSopInstanceUid":"2.25.1"}');

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
