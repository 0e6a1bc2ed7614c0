/**
 * A worker process of the service (started by pool.ts): opens its own
 * connection to the job database, claims jobs one at a time under a lease
 * and works them. It waits for a wake-up message from the server or polls.
 * It ends when its server does (the IPC channel closes) or on SIGTERM, after
 * the job in hand; a SIGKILL at any point leaves at most a temporary file
 * (removed by the server) and a lease that expires.
 */
import { hostname } from 'node:os';
import { openDatabase } from '../store/db.ts';
import { JobStore } from '../store/jobs.ts';
import { ModelCatalog } from '../models/catalog.ts';
import { ModelCache, runJob } from './run-job.ts';
import { AuditLog } from '../audit/log.ts';
import { MonitoringStore } from '../monitoring/store.ts';
import { JobDeidentify } from '../deid/job-deid.ts';
import type { WorkerSettings } from './pool.ts';

const settings = JSON.parse(process.env.MEDSEG_WORKER_SETTINGS ?? 'null') as WorkerSettings | null;
if (!settings) {
  process.stderr.write('medseg worker: started without MEDSEG_WORKER_SETTINGS (the server starts its workers)\n');
  process.exit(64);
}
const log = (msg: string) => process.stderr.write(`[worker ${process.pid}] ${msg}\n`);
const db = openDatabase(settings.dbPath);
const jobs = new JobStore(db, { maxAttempts: settings.maxAttempts });
const catalog = new ModelCatalog(settings.modelsDir);
const models = new ModelCache(catalog);
const ctx = {
  jobs,
  catalog,
  dataDir: settings.dataDir,
  leaseMs: settings.leaseMs,
  heartbeatMs: settings.heartbeatMs,
  log,
  limits: { maxVoxelBytes: settings.maxVoxelBytes, maxDecompressedBytes: settings.maxDecompressedBytes },
  pacs: { servers: settings.dicomweb, timeoutMs: settings.dicomwebTimeoutMs, maxBytes: settings.maxInputBytes },
  audit: new AuditLog(db),
  monitoring: new MonitoringStore(db),
  deidentify: new JobDeidentify(db),
  fhir: settings.fhir ? { server: settings.fhir, timeoutMs: settings.dicomwebTimeoutMs } : undefined,
};
const owner = `${hostname()}:${process.pid}:${settings.slot}`;

let stopping = false;
let wake: (() => void) | undefined;
const stop = () => {
  stopping = true;
  wake?.();
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('message', (m: unknown) => {
  if ((m as { type?: string })?.type === 'wake') wake?.();
});

if (process.connected) process.send?.({ type: 'ready', pid: process.pid });
while (!stopping) {
  const claimed = jobs.claim(owner, settings.leaseMs);
  if (!claimed) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, settings.pollMs);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    wake = undefined;
    continue;
  }
  const outcome = await runJob(ctx, models, claimed.job, claimed.lease);
  if (process.connected) process.send?.({ type: 'job', id: claimed.job.id, outcome, attempt: claimed.lease.attempt });
}
models.dispose();
db.close();
process.exit(0);
