/**
 * The job queue's contract, run against both stores: SQLite (a file in a
 * temporary folder) and PostgreSQL (a throw-away cluster on loopback, a
 * fresh schema per test). The last test, on PostgreSQL, runs the service
 * with worker processes on that queue and SIGKILLs a worker mid-job; the
 * job's audit, monitoring and de-identification records are then in the
 * data folder's SQLite file. Another runs two hosts on one PostgreSQL queue:
 * a server without workers and a worker host (`medseg-serve worker`), each
 * with a data folder of its own and one shared folder.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { repoRoot } from '@medseg/medseg/testing/data';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { openDatabase } from './db.ts';
import { JobStore, type NewJob } from './jobs.ts';
import { PgJobQueue } from './pg-jobs.ts';
import { SqliteJobQueue, type JobQueue } from './queue.ts';
import { startService } from '../service.ts';
import { AuditLog } from '../audit/log.ts';
import { verifyAuditChain } from '../audit/verify.ts';
import { JobDeidentify } from '../deid/job-deid.ts';
import { MonitoringStore } from '../monitoring/store.ts';
import { auth, caseForm, hippocampusCase, tempDir, testConfig, waitFor, writeModels } from '../testing/fixture.ts';
import { startPostgres, type TestPostgres } from '../testing/postgres.ts';

interface Harness {
  /** A fresh, empty queue on a clock the test drives; `other` opens a second connection to the same queue. */
  open(o?: { maxAttempts?: number }): Promise<{ jobs: JobQueue; other: () => Promise<JobQueue>; advance: (ms: number) => void }>;
  /** Where a service keeps its queue: undefined for the data folder's SQLite file, else a fresh PostgreSQL database. */
  serviceUrl(): Promise<string | undefined>;
  closeAll(): Promise<void>;
}

function sqliteHarness(): Harness {
  const open: JobQueue[] = [];
  return {
    async open(o = {}) {
      let clock = 1_000_000;
      const path = join(tempDir(), 'q.sqlite');
      const make = () => {
        const db = openDatabase(path);
        const q = new SqliteJobQueue(new JobStore(db, { now: () => clock, maxAttempts: o.maxAttempts }), db);
        open.push(q);
        return q;
      };
      return { jobs: make(), other: async () => make(), advance: (ms) => void (clock += ms) };
    },
    async serviceUrl() {
      return undefined;
    },
    async closeAll() {
      for (const q of open) await q.close();
    },
  };
}

function postgresHarness(): Harness {
  let server: TestPostgres | undefined;
  let admin: pg.Client | undefined;
  let n = 0;
  const open: JobQueue[] = [];
  // A schema per test (the connection's search path), faster than a database per test.
  const freshDatabase = async () => {
    if (!server) {
      server = await startPostgres({ durable: false });
      admin = new pg.Client(server.url);
      await admin.connect();
    }
    const name = `t${++n}`;
    await admin!.query(`CREATE SCHEMA ${name}`);
    return `${server.url}?options=${encodeURIComponent(`-c search_path=${name}`)}`;
  };
  return {
    async open(o = {}) {
      let clock = 1_000_000;
      const url = await freshDatabase();
      const make = async () => {
        const q = await PgJobQueue.open(url, { now: () => clock, maxAttempts: o.maxAttempts, poolSize: 4 });
        open.push(q);
        return q;
      };
      return { jobs: await make(), other: make, advance: (ms) => void (clock += ms) };
    },
    serviceUrl: freshDatabase,
    async closeAll() {
      for (const q of open) await q.close();
      await admin?.end();
      server?.stop();
    },
  };
}

const job = (id: string): NewJob => ({ id, model: 'm', modelVersion: 'v', inputPath: `uploads/${id}.nii`, inputFormat: 'nifti', keyId: 'k' });

for (const [name, make] of [
  ['sqlite', sqliteHarness],
  ['postgres', postgresHarness],
] as const) {
  describe(`job queue on ${name}`, () => {
    const h = make();
    after(() => h.closeAll());

    test('jobs are claimed oldest first, each by one worker, and completed once', async () => {
      const { jobs } = await h.open();
      await jobs.submit(job('a'));
      await jobs.submit(job('b'));
      const c1 = (await jobs.claim('w1', 1000))!;
      const c2 = (await jobs.claim('w2', 1000))!;
      assert.deepEqual([c1.job.id, c2.job.id], ['a', 'b']);
      assert.deepEqual([c1.job.state, c1.lease.attempt, c1.job.leaseOwner], ['running', 1, 'w1']);
      assert.equal(await jobs.claim('w3', 1000), null);
      assert.equal(await jobs.complete(c1.lease, 'results/a.a1.nii'), true);
      assert.equal(await jobs.complete(c1.lease, 'results/a.a1.nii'), false, 'a second completion under the same lease is refused');
      const a = (await jobs.get('a'))!;
      assert.deepEqual([a.state, a.progress, a.resultPath, a.leaseOwner], ['done', 1, 'results/a.a1.nii', null]);
      assert.equal(await jobs.eventCount('a', 'completed'), 1);
      assert.deepEqual(await jobs.counts(), { queued: 0, running: 1, done: 1, failed: 0, cancelled: 0 });
    });

    test('after a lease expires the job is claimed again; the late worker cannot record its result, the new one can', async () => {
      const { jobs, advance } = await h.open();
      await jobs.submit(job('a'));
      const first = (await jobs.claim('w1', 1000))!;
      advance(500);
      assert.equal(await jobs.heartbeat(first.lease, 1000, 0.3), true);
      assert.equal((await jobs.get('a'))!.progress, 0.3);
      assert.equal(await jobs.claim('w2', 1000), null, 'a renewed lease keeps the job');
      advance(1001);
      const second = (await jobs.claim('w2', 1000))!;
      assert.deepEqual([second.job.id, second.lease.attempt], ['a', 2]);
      assert.equal(await jobs.heartbeat(first.lease, 1000, 0.9), false, 'the lost lease is reported on the next heartbeat');
      assert.equal(await jobs.complete(first.lease, 'results/a.a1.nii'), false);
      assert.equal(await jobs.fail(first.lease, 'late'), false);
      assert.equal(await jobs.complete(second.lease, 'results/a.a2.nii'), true);
      const a = (await jobs.get('a'))!;
      assert.deepEqual([a.state, a.resultPath], ['done', 'results/a.a2.nii']);
      assert.equal(await jobs.eventCount('a', 'completed'), 1);
      assert.equal(await jobs.eventCount('a', 'outcome-rejected'), 2);
      assert.equal(await jobs.eventCount('a', 'lease-expired'), 1);
    });

    test('a failure is recorded under the lease with its message', async () => {
      const { jobs } = await h.open();
      await jobs.submit(job('a'));
      const c = (await jobs.claim('w1', 1000))!;
      assert.equal(await jobs.fail(c.lease, 'not a NIfTI file'), true);
      const a = (await jobs.get('a'))!;
      assert.deepEqual([a.state, a.error, a.resultPath], ['failed', 'not a NIfTI file', null]);
      assert.equal(await jobs.complete(c.lease, 'results/a.a1.nii'), false);
    });

    test('a cancelled job loses its lease: heartbeats and completion are refused', async () => {
      const { jobs } = await h.open();
      await jobs.submit(job('a'));
      await jobs.submit(job('b'));
      const c = (await jobs.claim('w1', 1000))!;
      assert.deepEqual(await jobs.cancel('a'), { before: 'running', after: 'cancelled' });
      assert.equal(await jobs.heartbeat(c.lease, 1000, 0.5), false);
      assert.equal(await jobs.complete(c.lease, 'results/a.a1.nii'), false);
      assert.equal((await jobs.get('a'))!.state, 'cancelled');
      assert.deepEqual(await jobs.cancel('b'), { before: 'queued', after: 'cancelled' });
      assert.equal(await jobs.claim('w1', 1000), null, 'a cancelled job is never claimed');
      assert.deepEqual(await jobs.cancel('a'), { before: 'cancelled', after: 'cancelled' });
      assert.equal(await jobs.cancel('zzz'), undefined);
    });

    test('expired leases are requeued at start-up; a job whose workers keep dying fails after maxAttempts', async () => {
      const { jobs, advance } = await h.open({ maxAttempts: 2 });
      await jobs.submit(job('a'));
      await jobs.claim('w1', 1000);
      assert.equal(await jobs.requeueExpired(), 0, 'a live lease stays');
      advance(1001);
      assert.equal(await jobs.requeueExpired(), 1);
      assert.equal((await jobs.get('a'))!.state, 'queued');
      assert.equal(await jobs.eventCount('a', 'requeued'), 1);
      const second = (await jobs.claim('w2', 1000))!;
      assert.equal(second.lease.attempt, 2);
      advance(1001);
      assert.equal(await jobs.claim('w3', 1000), null, 'no third attempt');
      const a = (await jobs.get('a'))!;
      assert.equal(a.state, 'failed');
      assert.match(a.error!, /gave up after 2 attempts/);
    });

    test('workers on separate connections, claiming at once, never take the same job', async () => {
      const { jobs, other } = await h.open();
      for (let i = 0; i < 40; i++) await jobs.submit(job(`j${String(i).padStart(2, '0')}`));
      const queues = [jobs, await other(), await other(), await other()];
      const taken = await Promise.all(
        queues.map(async (q, w) => {
          const mine: string[] = [];
          for (let c = await q.claim(`w${w}`, 60_000); c; c = await q.claim(`w${w}`, 60_000)) mine.push(c.job.id);
          return mine;
        }),
      );
      const all = taken.flat();
      assert.equal(all.length, 40, 'every job claimed');
      assert.equal(new Set(all).size, 40, 'no job claimed twice');
      assert.equal((await jobs.counts()).running, 40);
    });

    test('a job keeps its input reference and the facts of its result; files referred to are listed', async () => {
      const { jobs } = await h.open();
      await jobs.submit({ ...job('r'), inputFormat: 'dicomweb', inputPath: '', inputRef: '{"studyInstanceUid":"1.2"}' });
      await jobs.submit(job('s'));
      const c = (await jobs.claim('w', 1000))!;
      assert.equal(c.job.inputRef, '{"studyInstanceUid":"1.2"}');
      assert.equal(await jobs.complete(c.lease, 'results/r.a1.seg.dcm', '{"segSopInstanceUid":"2.25.1"}'), true);
      assert.equal((await jobs.get('r'))!.output, '{"segSopInstanceUid":"2.25.1"}');
      const files = await jobs.referencedFiles();
      assert.deepEqual([[...files.inputs].sort(), [...files.results]], [['', 'uploads/s.nii'], ['results/r.a1.seg.dcm']]);
    });

    test("autorouting's memory: a series is submitted once, even by two servers racing", async () => {
      const { jobs, other } = await h.open();
      assert.equal(await jobs.routeSeen('rule', ''), false);
      await jobs.routeRecord('rule', ['', '1.2.3']);
      assert.equal(await jobs.routeSeen('rule', ''), true);
      assert.equal(await jobs.routeSeen('rule', '1.2.3'), true);
      assert.equal(await jobs.submitRouted('rule', '1.2.3', job('x')), undefined, 'a recorded series makes no job');
      const second = await other();
      const [a, b] = await Promise.all([jobs.submitRouted('rule', '1.2.4', job('y')), second.submitRouted('rule', '1.2.4', job('z'))]);
      assert.equal([a, b].filter(Boolean).length, 1, 'one of the two servers submits the new series');
      assert.equal((await jobs.counts()).queued, 1);
    });

    // With worker processes on the store: on SQLite crash.test.ts kills the server and its workers mid-run (20 jobs); here the PostgreSQL queue.
    if (name !== 'postgres') return;
    test(`SIGKILL of a worker process mid-job (${name} queue): the job is taken again and completes exactly once`, { timeout: 120_000 }, async () => {
      const root = tempDir();
      const models = writeModels(join(root, 'models'));
      const pids: number[] = [];
      const svc = await startService(testConfig(join(root, 'data'), models, { workers: 1, databaseUrl: await h.serviceUrl() }), {
        onWorkerStart: (pid) => pids.push(pid),
      });
      try {
        assert.equal(svc.jobs.kind, name);
        const { adminKey } = svc;
        const ids: string[] = [];
        for (const [i, model] of ['hippo'].entries()) {
          const r = await fetch(`${svc.url}/jobs`, {
            method: 'POST',
            headers: auth(adminKey!),
            body: caseForm({ model, deidentify: 'true' }, { bytes: hippocampusCase(i + 1).bytes, name: `c${i}.nii.gz` }),
          });
          assert.equal(r.status, 202);
          ids.push(((await r.json()) as { id: string }).id);
        }
        // The first job while its worker (named in the lease owner) holds it,
        // before its result is written: the worker is killed. (Waiting for a
        // progress above 0 raced on an idle machine: a small case's progress
        // went from 0 to past 0.9 between two polls.)
        const running = await waitFor(
          'the first job running, before its result',
          async () => {
            const j = (await svc.jobs.get(ids[0]!))!;
            return j.state === 'running' && j.leaseOwner && j.progress < 0.9 ? j : undefined;
          },
          60_000,
          20,
        );
        const pid = Number(running.leaseOwner!.split(':')[1]);
        assert.ok(pids.includes(pid), 'the lease names a worker of the pool');
        process.kill(pid, 'SIGKILL');
        const final = await waitFor(
          'every job to finish',
          async () => {
            const all = await Promise.all(ids.map(async (id) => (await svc.jobs.get(id))!));
            return all.every((j) => ['done', 'failed', 'cancelled'].includes(j.state)) ? all : undefined;
          },
          90_000,
          100,
        );
        assert.deepEqual(
          final.map((j) => j.state),
          ['done'],
        );
        assert.ok(final[0]!.attempt >= 2, 'the killed job was taken again');
        for (const id of ids) assert.equal(await svc.jobs.eventCount(id, 'completed'), 1, `job ${id} completed once`);
        assert.ok((await svc.jobs.eventCount(ids[0]!, 'lease-expired')) >= 1);
        const files = readdirSync(join(root, 'data', 'results'))
          .map((f) => `results/${f}`)
          .sort();
        assert.deepEqual(files, final.map((j) => j.resultPath!).sort(), 'one result file per job, the recorded one; no partial file');
        // The audit log, monitoring records and de-identification marks stay in the data folder's SQLite file beside the PostgreSQL queue.
        const db = openDatabase(join(root, 'data', 'medseg.sqlite'));
        try {
          const chain = verifyAuditChain(db);
          assert.equal(chain.ok, true, JSON.stringify(chain.broken));
          const actions = new AuditLog(db)
            .records()
            .filter((r) => r.jobId === ids[0])
            .map((r) => r.action);
          assert.deepEqual(actions, ['job.submit', 'job.done'], 'the submission and the one outcome are audited');
          assert.equal(new JobDeidentify(db).wanted(ids[0]!), true);
          assert.deepEqual(
            new MonitoringStore(db).recent('hippo', 10).map((c) => c.jobId),
            [ids[0]],
            'the done job has its monitoring record',
          );
        } finally {
          db.close();
        }
      } finally {
        await svc.close();
      }
    });

    test('two hosts on one queue: a server without workers and a worker host share a folder; each records what it did', { timeout: 120_000 }, async () => {
      const root = tempDir();
      const models = writeModels(join(root, 'models'));
      const shared = join(root, 'shared');
      const url = (await h.serviceUrl())!;
      const svc = await startService(testConfig(join(root, 'api'), models, { workers: 0, databaseUrl: url, sharedDir: shared }));
      const workerData = join(root, 'worker');
      mkdirSync(workerData);
      writeFileSync(join(workerData, 'config.json'), JSON.stringify({ leaseMs: 2000, heartbeatMs: 400, pollMs: 200, logLevel: 'silent' }));
      const cli = [
        '--import',
        'tsx',
        'packages/server/src/cli.ts',
        'worker',
        '--data',
        workerData,
        '--shared',
        shared,
        '--models',
        models,
        '--workers',
        '1',
        '--json',
      ];
      const env = { ...process.env, MEDSEG_DATABASE_URL: url };
      const host = spawn(process.execPath, cli, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      host.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-10_000)));
      let out = '';
      host.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      try {
        const started = await waitFor(`the worker host to start (${err})`, () =>
          out.includes('\n') ? (JSON.parse(out.split('\n')[0]!) as { worker: boolean; sharedDir: string }) : undefined,
        );
        assert.deepEqual([started.worker, started.sharedDir], [true, shared]);
        // A second process on the worker's data folder is refused; a worker host without the shared folder too.
        const again = spawnSync(process.execPath, cli, { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000 });
        assert.equal(again.status, 2, again.stderr);
        assert.match(again.stderr, /uses the data folder/);
        const noShared = spawnSync(process.execPath, cli.slice(0, 6).concat(['--data', join(root, 'w2'), '--shared', join(root, 'nowhere')]), {
          cwd: repoRoot,
          env,
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(noShared.status, 2, noShared.stderr);
        assert.match(noShared.stderr, /has no uploads: start the server on it first/);

        const ids: string[] = [];
        for (const n of [1, 2]) {
          const r = await fetch(`${svc.url}/jobs`, {
            method: 'POST',
            headers: auth(svc.adminKey!),
            body: caseForm({ model: 'hippo' }, { bytes: hippocampusCase(n).bytes, name: `c${n}.nii.gz` }),
          });
          assert.equal(r.status, 202);
          ids.push(((await r.json()) as { id: string }).id);
        }
        const done = await waitFor('both jobs done by the worker host', async () => {
          const all = await Promise.all(ids.map(async (id) => (await svc.jobs.get(id))!));
          return all.every((j) => j.state === 'done') ? all : undefined;
        });
        for (const j of done) {
          assert.ok(j.resultPath?.startsWith('results/'));
          // The server hands out what the worker host wrote to the shared folder.
          const res = await fetch(`${svc.url}/jobs/${j.id}/result`, { headers: auth(svc.adminKey!) });
          assert.equal(res.status, 200);
          assert.ok((await res.arrayBuffer()).byteLength > 100);
        }
        assert.deepEqual(
          readdirSync(join(root, 'api')).filter((f) => f === 'uploads' || f === 'results'),
          [],
          "no files in the server's own data folder",
        );
        // Each host's SQLite file holds what it did: the submission on the server, the outcome on the worker host.
        const actions = (dir: string) => {
          const db = openDatabase(join(root, dir, 'medseg.sqlite'));
          try {
            return new AuditLog(db)
              .records()
              .filter((r) => r.jobId === ids[0])
              .map((r) => r.action);
          } finally {
            db.close();
          }
        };
        assert.deepEqual(actions('api'), ['job.submit', 'result.read']);
        assert.deepEqual(actions('worker'), ['job.done']);
      } finally {
        host.kill('SIGTERM');
        const code = await new Promise<number | null>((r) => (host.exitCode !== null ? r(host.exitCode) : host.once('exit', (c) => r(c))));
        await svc.close();
        assert.equal(code, 0, `the worker host stops cleanly on SIGTERM: ${err}`);
      }
    });
  });
}
