/**
 * A worker host (`medseg-serve worker`): a machine that only computes, for a
 * server elsewhere. It needs the job queue on PostgreSQL and the server's
 * shared folder (uploads, results, de-identification secret) mounted at
 * sharedDir; its own data folder keeps what this host records (audit log,
 * monitoring records, FHIR outbox, each in its SQLite file) and is locked
 * like a server's. It runs the worker pool, sends its FHIR outbox, and
 * sweeps the shared folder; no HTTP.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from './audit/log.ts';
import { startBackground } from './background.ts';
import { ConfigError, filesDir, type ServiceConfig } from './config.ts';
import { lockDataFolder, orphanRule, removeOrphanFiles } from './data-folder.ts';
import { FhirOutbox } from './fhir/outbox.ts';
import { openDatabase } from './store/db.ts';
import { openJobQueue } from './store/queue.ts';
import type { WorkerPool } from './worker/pool.ts';
import { DEID_SECRET_FILE } from './deid/secret.ts';

export interface WorkerHost {
  pool: WorkerPool;
  recovered: { requeued: number; removedFiles: number };
  close(): Promise<void>;
}

export async function startWorkerHost(c: ServiceConfig, o: { log?: (msg: string) => void; onWorkerStart?: (pid: number) => void } = {}): Promise<WorkerHost> {
  if (!c.databaseUrl) throw new ConfigError('a worker host needs the job queue on PostgreSQL (databaseUrl, MEDSEG_DATABASE_URL) that its server uses');
  if (c.sharedDir === null) throw new ConfigError('a worker host needs the shared folder of its server (sharedDir, --shared, MEDSEG_SERVE_SHARED)');
  if (c.workers < 1) throw new ConfigError('a worker host needs at least one worker');
  const files = filesDir(c);
  // The server makes the shared folder's parts; a worker host that finds them missing is looking at the wrong folder.
  for (const part of ['uploads', 'results', DEID_SECRET_FILE]) {
    if (!existsSync(join(files, part))) {
      throw new ConfigError(`the shared folder ${files} has no ${part}: start the server on it first, or mount it here`);
    }
  }
  mkdirSync(c.dataDir, { recursive: true });
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const unlock = lockDataFolder(c.dataDir);
  const dbPath = join(c.dataDir, 'medseg.sqlite');
  const db = openDatabase(dbPath);
  let jobs;
  try {
    jobs = await openJobQueue({ dbPath, databaseUrl: c.databaseUrl }, { maxAttempts: c.maxAttempts, poolSize: 2 });
    const requeued = await jobs.requeueExpired();
    const removedFiles = await removeOrphanFiles(files, jobs, orphanRule(c));
    const background = startBackground(c, { dbPath, jobs, audit: new AuditLog(db), fhirOutbox: new FhirOutbox(db), log, onWorkerStart: o.onWorkerStart });
    const openJobs = jobs;
    return {
      pool: background.pool,
      recovered: { requeued, removedFiles },
      async close() {
        await background.stop();
        await openJobs.close();
        db.close();
        unlock();
      },
    };
  } catch (e) {
    await jobs?.close().catch(() => undefined);
    db.close();
    unlock();
    throw e;
  }
}
