/**
 * A worker process of the service (started by pool.ts): opens its own
 * connection to the job queue (SQLite or PostgreSQL), claims jobs one at a time under a lease
 * and works them. It waits for a wake-up message from the server or polls.
 * It ends when its server does (the IPC channel closes) or on SIGTERM, after
 * the job in hand; a SIGKILL at any point leaves at most a temporary file
 * (removed by the server) and a lease that expires.
 */
import { hostname } from 'node:os';
import { openJobQueue } from '../store/queue.ts';
import { openDatabase } from '../store/db.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import { ModelCatalog } from '../models/catalog.ts';
import { ModelCache, runJob } from './run-job.ts';
import { AuditLog } from '../audit/log.ts';
import { MonitoringStore } from '../monitoring/store.ts';
import { JobDeidentify } from '../deid/job-deid.ts';
import { FhirOutbox } from '../fhir/outbox.ts';
import type { WorkerSettings } from './pool.ts';

const settings = JSON.parse(process.env.MEDSEG_WORKER_SETTINGS ?? 'null') as WorkerSettings | null;
if (!settings) {
  process.stderr.write('medseg worker: started without MEDSEG_WORKER_SETTINGS (the server starts its workers)\n');
  process.exit(64);
}
const log = (msg: string) => process.stderr.write(`[worker ${process.pid}] ${msg}\n`);
const at = { dbPath: settings.dbPath, databaseUrl: settings.databaseUrl };
// The audit log, monitoring records and de-identification marks are in the data folder's SQLite file whichever
// database holds the queue; a SQLite queue shares the connection, so a job's outcome and its records commit together.
const db = openDatabase(settings.dbPath);
const jobs = await openJobQueue({ ...at, db }, { maxAttempts: settings.maxAttempts, poolSize: 1, log });
const keeper = new LeaseKeeper({ at, leaseMs: settings.leaseMs, heartbeatMs: settings.heartbeatMs });
const catalog = new ModelCatalog(settings.modelsDir);
const models = new ModelCache(catalog);
const ctx = {
  jobs,
  keeper,
  catalog,
  filesDir: settings.filesDir,
  leaseMs: settings.leaseMs,
  heartbeatMs: settings.heartbeatMs,
  log,
  limits: { maxVoxelBytes: settings.maxVoxelBytes, maxDecompressedBytes: settings.maxDecompressedBytes },
  pacs: { servers: settings.dicomweb, timeoutMs: settings.dicomwebTimeoutMs, maxBytes: settings.maxInputBytes },
  audit: new AuditLog(db),
  monitoring: new MonitoringStore(db),
  deidentify: new JobDeidentify(db),
  fhir: { outbox: new FhirOutbox(db), send: settings.fhir != null },
  fhirPatientIdSystem: settings.fhir?.patientIdSystem,
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

await keeper.ready();
if (process.connected) process.send?.({ type: 'ready', pid: process.pid });
while (!stopping) {
  let claimed;
  try {
    claimed = await jobs.claim(owner, settings.leaseMs);
  } catch (e) {
    // The database is unreachable (PostgreSQL restarting): try again after a poll interval.
    log(`cannot claim: ${(e as Error).message}`);
    claimed = null;
  }
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
await keeper.stop();
await jobs.close();
db.close();
process.exit(0);
