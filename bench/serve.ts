/**
 * The service under load and a crash: `npm run bench -- serve [--jobs N] [--workers N] [--kill-at F] [--tag NAME]`.
 *
 * N jobs (default 200) on tiny real cases (hippocampus crops, an untrained
 * tiny 3D U-Net: the queue is measured, not the model) are submitted at once
 * to medseg-serve on loopback; status calls are timed throughout by a few
 * pollers; when a fraction F (default 0.3) of the jobs is done the server
 * and its workers are killed with SIGKILL and started again on the same data
 * folder. At the end: jobs lost (not done by the deadline), jobs completed
 * more than once (from the job event log and the result files), and the
 * p50/p99 latency of the status calls answered. One row per store: SQLite
 * now; the PostgreSQL store adds its row beside it.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { quantile } from '../packages/medseg/src/util/quantile.ts';
import { openDatabase } from '../packages/server/src/store/db.ts';
import { JobStore } from '../packages/server/src/store/jobs.ts';
import { auth, caseForm, hippocampusCase, tempDir, writeModels } from '../packages/server/src/testing/fixture.ts';
import { groupAlive, killGroup, spawnServer, type SpawnedServer } from '../packages/server/src/testing/spawn.ts';
import { round } from './lib/stats.ts';
import { takeTag, writeResult } from './lib/report.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

export async function main(argv: string[]): Promise<void> {
  const { tag, rest } = takeTag(argv);
  const jobsN = Math.floor(option(rest, '--jobs', 200));
  const workers = Math.floor(option(rest, '--workers', 2));
  const killAt = option(rest, '--kill-at', 0.3);
  const deadlineMs = option(rest, '--deadline-s', 1800) * 1000;
  const loadBefore = loadavg();
  const root = tempDir('medseg-bench-serve-');
  const data = join(root, 'data');
  const models = writeModels(join(root, 'models'));
  mkdirSync(data);
  writeFileSync(
    join(data, 'config.json'),
    JSON.stringify({ port: 0, workers, leaseMs: 3000, heartbeatMs: 500, pollMs: 200, logLevel: 'error', rateLimit: { max: 1_000_000, windowMs: 60_000 } }),
  );
  const groups: number[] = [];
  const t0 = Date.now();
  try {
    let server: SpawnedServer = await spawnServer(data, models, groups);
    const h = auth(server.adminKey!);
    const cases = Array.from({ length: 10 }, (_, i) => hippocampusCase(i + 1).bytes);
    const submitted = await Promise.all(
      Array.from({ length: jobsN }, async (_, i) => {
        const r = await fetch(`${server.url}/jobs`, {
          method: 'POST',
          headers: h,
          body: caseForm({ model: 'hippo' }, { bytes: cases[i % cases.length]!, name: `c${i}.nii.gz` }),
        });
        if (r.status !== 202) throw new Error(`submission ${i}: ${r.status} ${await r.text()}`);
        return ((await r.json()) as { id: string }).id;
      }),
    );
    console.log(`submitted ${jobsN} jobs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const latencies: number[] = [];
    let refused = 0;
    const state = new Map<string, string>();
    let stop = false;
    // Pollers: each walks the jobs, timing each status call.
    const pollers = Array.from({ length: 4 }, async (_, p) => {
      for (let k = p; !stop; k = (k + 4) % jobsN) {
        const id = submitted[k]!;
        const t = performance.now();
        try {
          const r = await fetch(`${server.url}/jobs/${id}`, { headers: h });
          const j = (await r.json()) as { state: string };
          latencies.push(performance.now() - t);
          state.set(id, j.state);
        } catch {
          refused++; // the server is down (killed, restarting)
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
    const done = () => [...state.values()].filter((s) => s === 'done').length;
    while (done() < killAt * jobsN && Date.now() - t0 < deadlineMs) await new Promise((r) => setTimeout(r, 100));
    const doneAtKill = done();
    await killGroup(server.child.pid!);
    console.log(`SIGKILL at ${doneAtKill}/${jobsN} done, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    server = await spawnServer(data, models, groups);
    while (done() < jobsN && Date.now() - t0 < deadlineMs) await new Promise((r) => setTimeout(r, 250));
    stop = true;
    await Promise.all(pollers);
    const wallS = (Date.now() - t0) / 1000;
    server.child.kill('SIGTERM');
    for (let i = 0; i < 100 && groupAlive(server.child.pid!); i++) await new Promise((r) => setTimeout(r, 100));
    await killGroup(server.child.pid!);

    const db = openDatabase(join(data, 'medseg.sqlite'));
    const store = new JobStore(db);
    let lost = 0;
    let duplicated = 0;
    let retried = 0;
    for (const id of submitted) {
      const j = store.get(id)!;
      if (j.state !== 'done') lost++;
      if (store.eventCount(id, 'completed') > 1) duplicated++;
      if (j.attempt > 1) retried++;
    }
    db.close();
    const files = readdirSync(join(data, 'results'));
    const extraFiles = files.length - (jobsN - lost);
    const sorted = [...latencies].sort((a, b) => a - b);
    const row = {
      store: 'sqlite',
      jobs: jobsN,
      lost,
      duplicated,
      p50_ms: round(quantile(sorted, 0.5), 1),
      p99_ms: round(quantile(sorted, 0.99), 1),
      status_calls: latencies.length,
      status_calls_refused_while_down: refused,
      done_at_kill: doneAtKill,
      jobs_retried_after_kill: retried,
      result_files_beyond_one_per_job: extraFiles,
      workers,
      wall_s: round(wallS, 1),
    };
    console.table([row]);
    const path = writeResult('serve', argv, { rows: [row] }, loadBefore, tag);
    console.log(`wrote ${path}`);
  } finally {
    for (const g of groups) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
  }
}
