/**
 * The data folder's lock and the clean-up of what a crash leaves: on a
 * folder of one host every file no job refers to goes; on a shared folder
 * the result files of an attempt still running (on another host) and uploads
 * younger than the grace period stay.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataFolderBusy, lockDataFolder, removeOrphanFiles, resultFileAttempt } from './data-folder.ts';
import { openDatabase } from './store/db.ts';
import { JobStore } from './store/jobs.ts';
import { SqliteJobQueue } from './store/queue.ts';
import { tempDir } from './testing/fixture.ts';

test('a result file names its job and attempt, the temporary file of its atomic write too', () => {
  assert.deepEqual(resultFileAttempt('0a1b.a2.nii.gz'), { jobId: '0a1b', attempt: 2 });
  assert.deepEqual(resultFileAttempt('.0a1b.a13.dcm.tmp-4242-7'), { jobId: '0a1b', attempt: 13 });
  assert.equal(resultFileAttempt('notes.txt'), undefined);
});

test('one process per data folder; a stale lock is taken over', () => {
  const dir = tempDir('medseg-lock-');
  try {
    const release = lockDataFolder(dir);
    assert.equal(readFileSync(join(dir, 'server.pid'), 'utf8'), `${process.pid}\n`);
    release();
    assert.equal(existsSync(join(dir, 'server.pid')), false, 'released');
    // A live process (pid 1) holds it: refused.
    writeFileSync(join(dir, 'server.pid'), '1\n');
    assert.throws(
      () => lockDataFolder(dir),
      (e: unknown) => e instanceof DataFolderBusy && /\(pid 1\)/.test(e.message),
    );
    // A pid that cannot be alive (beyond pid_max) is a crash's leftover.
    writeFileSync(join(dir, 'server.pid'), '99999999\n');
    lockDataFolder(dir)();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('orphans: all unreferenced files go on a folder of one host; on a shared folder, running attempts and fresh uploads stay', async () => {
  const dir = tempDir('medseg-orphans-');
  const db = openDatabase(':memory:');
  const jobs = new SqliteJobQueue(new JobStore(db), db);
  try {
    const files = () => ['uploads', 'results'].flatMap((s) => readdirSync(join(dir, s)).map((f) => `${s}/${f}`)).sort();
    const make = () => {
      mkdirSync(join(dir, 'uploads'), { recursive: true });
      mkdirSync(join(dir, 'results'), { recursive: true });
      for (const f of [
        'uploads/run.nii',
        'uploads/fresh.nii',
        'uploads/old.nii',
        'results/run.a1.nii.gz',
        'results/.run.a1.nii.gz.tmp-77-1',
        'results/done.a1.nii.gz',
        'results/done.a2.nii.gz',
        'results/run.a0.nii.gz',
      ]) {
        writeFileSync(join(dir, f), 'x');
      }
      const hourAgo = new Date(Date.now() - 3_600_000);
      utimesSync(join(dir, 'uploads/old.nii'), hourAgo, hourAgo);
    };
    for (const id of ['run', 'done']) {
      await jobs.submit({ id, model: 'm', modelVersion: 'v', inputPath: `uploads/${id}.nii`, inputFormat: 'nifti', keyId: 'k' });
    }
    // 'done' completed on its second attempt; 'run' is in its first attempt on some host.
    const d1 = (await jobs.claim('host-b:1:0', 60_000))!;
    await jobs.requeueExpired();
    assert.equal(d1.job.id, 'run');
    const c = (await jobs.claim('host-c:1:0', 60_000))!;
    assert.equal(c.job.id, 'done');
    db.prepare("UPDATE jobs SET attempt = 2 WHERE id = 'done'").run();
    assert.equal(await jobs.complete({ ...c.lease, attempt: 2 }, 'results/done.a2.nii.gz', null), true);
    make();
    assert.equal(await removeOrphanFiles(dir, jobs, { shared: { graceMs: 60_000 } }), 3);
    assert.deepEqual(files(), ['results/.run.a1.nii.gz.tmp-77-1', 'results/done.a2.nii.gz', 'results/run.a1.nii.gz', 'uploads/fresh.nii', 'uploads/run.nii']);
    // The same files on a folder of this host alone: everything unreferenced goes.
    rmSync(join(dir, 'uploads'), { recursive: true });
    rmSync(join(dir, 'results'), { recursive: true });
    make();
    assert.equal(await removeOrphanFiles(dir, jobs), 6);
    assert.deepEqual(files(), ['results/done.a2.nii.gz', 'uploads/run.nii']);
  } finally {
    await jobs.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
