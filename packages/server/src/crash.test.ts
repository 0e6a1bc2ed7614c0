/**
 * The kill -9 test: 20 jobs on tiny real cases, the server and its workers
 * killed with SIGKILL while jobs run, the server started again on the same
 * data folder: every job completes, exactly once (one 'completed' event,
 * one result file), and no partial file is left. Bounded: each wait has a
 * deadline, and the process group is killed whatever happens.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readVolume } from '@medseg/medseg/io/read';
import { openDatabase } from './store/db.ts';
import { JobStore } from './store/jobs.ts';
import { auth, caseForm, hippocampusCase, tempDir, waitFor, writeModels } from './testing/fixture.ts';
import { groupAlive, killGroup, spawnServer } from './testing/spawn.ts';

const JOBS = 20;
const groups: number[] = [];

after(async () => {
  for (const g of groups) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
});

test(
  'SIGKILL of the server and its workers mid-run: after a restart every job completes exactly once and no partial file is left',
  { timeout: 180_000 },
  async () => {
    const root = tempDir();
    const data = join(root, 'data');
    const models = writeModels(join(root, 'models'));
    mkdirSync(data);
    // Short leases so that the jobs the kill interrupted are taken again quickly; a rate limit above the test's polling.
    writeFileSync(
      join(data, 'config.json'),
      JSON.stringify({ port: 0, workers: 2, leaseMs: 2000, heartbeatMs: 400, pollMs: 200, logLevel: 'error', rateLimit: { max: 100_000, windowMs: 60_000 } }),
    );

    const first = await spawnServer(data, models, groups);
    assert.ok(first.adminKey);
    const h = auth(first.adminKey!);
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const r = await fetch(`${first.url}/jobs`, {
        method: 'POST',
        headers: h,
        body: caseForm({ model: 'hippo' }, { bytes: hippocampusCase(i + 1).bytes, name: `case${i}.nii.gz` }),
      });
      assert.equal(r.status, 202, await r.clone().text());
      ids.push(((await r.json()) as { id: string }).id);
    }
    const states = async (url: string) =>
      Promise.all(
        ids.map(
          async (id) => (await (await fetch(`${url}/jobs/${id}`, { headers: h })).json()) as { id: string; state: string; progress: number; attempt: number },
        ),
      );

    // Kill while some jobs are done and one is early in its prediction.
    const atKill = await waitFor(
      'a few jobs done and one early in its run',
      async () => {
        const s = await states(first.url);
        const done = s.filter((j) => j.state === 'done').length;
        return done >= 2 && s.some((j) => j.state === 'running' && j.progress < 0.5) ? s : undefined;
      },
      120_000,
      100,
    );
    await killGroup(first.child.pid!);
    const doneBefore = atKill.filter((j) => j.state === 'done').length;
    assert.ok(doneBefore < JOBS, 'the kill came mid-run');

    const second = await spawnServer(data, models, groups);
    assert.equal(second.adminKey, null, 'the admin key is made only on the first start');
    const final = await waitFor(
      'every job to finish after the restart',
      async () => {
        const s = await states(second.url);
        return s.every((j) => ['done', 'failed', 'cancelled'].includes(j.state)) ? s : undefined;
      },
      150_000,
      250,
    );
    try {
      assert.deepEqual(
        final.filter((j) => j.state !== 'done').map((j) => `${j.id} ${j.state}`),
        [],
        'every job done',
      );
      assert.ok(
        final.some((j) => j.attempt >= 2),
        'a job the kill interrupted was taken again',
      );
      // Exactly once, from the database's own record.
      const db = openDatabase(join(data, 'medseg.sqlite'));
      const jobs = new JobStore(db);
      for (const id of ids) assert.equal(jobs.eventCount(id, 'completed'), 1, `job ${id} completed once`);
      const recorded = ids.map((id) => jobs.get(id)!.resultPath!).sort();
      db.close();
      // One result file per job, the recorded one, complete; nothing else (no temporary or unrecorded files).
      const files = readdirSync(join(data, 'results'))
        .map((f) => `results/${f}`)
        .sort();
      assert.deepEqual(files, recorded);
      assert.deepEqual(
        readdirSync(join(data, 'uploads')).filter((f) => f.startsWith('.')),
        [],
        'no half-received upload',
      );
      for (const [i, id] of ids.entries()) {
        const res = await fetch(`${second.url}/jobs/${id}/result`, { headers: h });
        assert.equal(res.status, 200);
        const out = join(root, `r${i}.nii.gz`);
        writeFileSync(out, Buffer.from(await res.arrayBuffer()));
        const [got, input] = await Promise.all([readVolume(out), readVolume(hippocampusCase(i + 1).path)]);
        assert.deepEqual(got.size, input.size, `result of job ${i} reads back whole`);
      }
    } finally {
      second.child.kill('SIGTERM');
      await waitFor('the server to stop', () => (groupAlive(second.child.pid!) ? undefined : true), 30_000, 100).catch(() => killGroup(second.child.pid!));
    }
  },
);
