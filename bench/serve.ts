/**
 * The service under load and faults: `npm run bench -- serve [--store sqlite|postgres|both] [--jobs N] [--workers N] [--deadline-s S] [--tag NAME]`.
 *
 * For each store (the data folder's SQLite file; PostgreSQL, a throw-away
 * cluster on loopback, durable settings): N jobs (default 200) on tiny real
 * cases (hippocampus crops, an untrained tiny 3D U-Net: the queue is
 * measured, not the model) are submitted at once to medseg-serve on
 * loopback; status calls are timed throughout by a few pollers. Two faults:
 * when 20% of the jobs are done the worker processes alone are killed with
 * SIGKILL (the server starts others), and at 50% the server and its workers
 * together (then the server is started again on the same data folder and
 * queue). At the end, from the queue's own record: jobs lost (not done by
 * the deadline), jobs completed more than once ('completed' events), result
 * files that are not a job's one recorded result (partial or orphaned), and
 * the p50/p99 latency of the status calls answered. One row per store.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { quantile } from '../packages/medseg/src/util/quantile.ts';
import { openJobQueue } from '../packages/server/src/store/queue.ts';
import { auth, caseForm, hippocampusCase, tempDir, writeModels } from '../packages/server/src/testing/fixture.ts';
import { startPostgres, type TestPostgres } from '../packages/server/src/testing/postgres.ts';
import { groupAlive, killGroup, spawnServer, type SpawnedServer } from '../packages/server/src/testing/spawn.ts';
import { round } from './lib/stats.ts';
import { takeTag, writeResult } from './lib/report.ts';

type Store = 'sqlite' | 'postgres';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

function stores(args: string[]): Store[] {
  const i = args.indexOf('--store');
  const v = i < 0 ? 'both' : args[i + 1];
  if (v === 'both') return ['sqlite', 'postgres'];
  if (v === 'sqlite' || v === 'postgres') return [v];
  throw new Error('--store takes sqlite, postgres or both');
}

/** The server's worker processes: members of its process group running the worker entry, from /proc. */
function workerPids(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === pgid) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // Fields after the command (which may hold spaces): state ppid pgrp ...
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === pgid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('worker/main')) out.push(Number(d));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunOptions {
  store: Store;
  jobsN: number;
  workers: number;
  deadlineMs: number;
}

async function runStore(o: RunOptions): Promise<Record<string, unknown>> {
  const root = tempDir(`medseg-bench-serve-${o.store}-`);
  const data = join(root, 'data');
  const models = writeModels(join(root, 'models'));
  mkdirSync(data);
  let pg: TestPostgres | undefined;
  if (o.store === 'postgres') pg = await startPostgres({ durable: true });
  writeFileSync(
    join(data, 'config.json'),
    JSON.stringify({
      port: 0,
      workers: o.workers,
      leaseMs: 3000,
      heartbeatMs: 500,
      pollMs: 200,
      logLevel: 'error',
      rateLimit: { max: 1_000_000, windowMs: 60_000 },
      ...(pg ? { databaseUrl: pg.url } : {}),
    }),
  );
  const groups: number[] = [];
  const t0 = Date.now();
  try {
    let server: SpawnedServer = await spawnServer(data, models, groups);
    const h = auth(server.adminKey!);
    const cases = Array.from({ length: 10 }, (_, i) => hippocampusCase(i + 1).bytes);
    const submitted = await Promise.all(
      Array.from({ length: o.jobsN }, async (_, i) => {
        const r = await fetch(`${server.url}/jobs`, {
          method: 'POST',
          headers: h,
          body: caseForm({ model: 'hippo' }, { bytes: cases[i % cases.length]!, name: `c${i}.nii.gz` }),
        });
        if (r.status !== 202) throw new Error(`submission ${i}: ${r.status} ${await r.text()}`);
        return ((await r.json()) as { id: string }).id;
      }),
    );
    console.log(`[${o.store}] submitted ${o.jobsN} jobs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const latencies: number[] = [];
    let refused = 0;
    const state = new Map<string, string>();
    let stop = false;
    // Pollers: each walks the jobs, timing each status call.
    const pollers = Array.from({ length: 4 }, async (_, p) => {
      for (let k = p; !stop; k = (k + 4) % o.jobsN) {
        const id = submitted[k]!;
        const t = performance.now();
        try {
          const r = await fetch(`${server.url}/jobs/${id}`, { headers: h });
          const j = (await r.json()) as { state: string };
          latencies.push(performance.now() - t);
          state.set(id, j.state);
        } catch {
          refused++; // the server is down (killed, restarting)
          await sleep(50);
        }
      }
    });
    const done = () => [...state.values()].filter((s) => s === 'done').length;
    const waitDone = async (n: number) => {
      while (done() < n && Date.now() - t0 < o.deadlineMs) await sleep(100);
    };
    await waitDone(0.2 * o.jobsN);
    const workersKilled = workerPids(server.child.pid!);
    for (const pid of workersKilled) process.kill(pid, 'SIGKILL');
    const doneAtWorkerKill = done();
    console.log(`[${o.store}] SIGKILL of ${workersKilled.length} workers at ${doneAtWorkerKill}/${o.jobsN} done`);
    await waitDone(0.5 * o.jobsN);
    const doneAtServerKill = done();
    await killGroup(server.child.pid!);
    console.log(`[${o.store}] SIGKILL of the server and its workers at ${doneAtServerKill}/${o.jobsN} done, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    server = await spawnServer(data, models, groups);
    await waitDone(o.jobsN);
    stop = true;
    await Promise.all(pollers);
    const wallS = (Date.now() - t0) / 1000;
    server.child.kill('SIGTERM');
    for (let i = 0; i < 100 && groupAlive(server.child.pid!); i++) await sleep(100);
    await killGroup(server.child.pid!);

    const queue = await openJobQueue({ dbPath: join(data, 'medseg.sqlite'), databaseUrl: pg?.url });
    let lost = 0;
    let duplicated = 0;
    let retried = 0;
    const recorded = new Set<string>();
    for (const id of submitted) {
      const j = (await queue.get(id))!;
      if (j.state !== 'done') lost++;
      if (j.resultPath) recorded.add(j.resultPath);
      if ((await queue.eventCount(id, 'completed')) > 1) duplicated++;
      if (j.attempt > 1) retried++;
    }
    await queue.close();
    const files = readdirSync(join(data, 'results'));
    const stray = files.filter((f) => !recorded.has(`results/${f}`)).length;
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      store: o.store,
      jobs: o.jobsN,
      lost,
      duplicated,
      p50_ms: round(quantile(sorted, 0.5), 1),
      p99_ms: round(quantile(sorted, 0.99), 1),
      status_calls: latencies.length,
      status_calls_refused_while_down: refused,
      workers_killed: workersKilled.length,
      done_at_worker_kill: doneAtWorkerKill,
      done_at_server_kill: doneAtServerKill,
      jobs_retried: retried,
      result_files_not_recorded: stray,
      result_files: files.length,
      workers: o.workers,
      wall_s: round(wallS, 1),
      finished_by_deadline: lost === 0,
    };
  } finally {
    for (const g of groups) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
    pg?.stop();
  }
}

export async function main(argv: string[]): Promise<void> {
  const { tag, rest } = takeTag(argv);
  const jobsN = Math.floor(option(rest, '--jobs', 200));
  const workers = Math.floor(option(rest, '--workers', 2));
  const deadlineMs = option(rest, '--deadline-s', 1200) * 1000;
  const loadBefore = loadavg();
  const rows: Record<string, unknown>[] = [];
  for (const store of stores(rest)) rows.push(await runStore({ store, jobsN, workers, deadlineMs }));
  console.table(rows);
  const path = writeResult('serve', argv, { rows }, loadBefore, tag);
  console.log(`wrote ${path}`);
}
