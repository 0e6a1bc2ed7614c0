/**
 * What every medseg-serve process runs besides (or instead of) the HTTP API:
 * the worker pool, the FHIR sender of its outbox, and on a shared folder the
 * periodic clean-up. The server (service.ts) and a worker host
 * (worker-host.ts) start the same parts with the same settings.
 */
import { filesDir, type ServiceConfig } from './config.ts';
import { orphanRule, sweepSharedFolder } from './data-folder.ts';
import type { AuditLog } from './audit/log.ts';
import type { FhirOutbox } from './fhir/outbox.ts';
import { FhirSender } from './fhir/sender.ts';
import type { JobQueue } from './store/queue.ts';
import { WorkerPool } from './worker/pool.ts';

export interface Background {
  pool: WorkerPool;
  /** Stops the sweeps, the workers (each after the job in hand, killed after graceMs) and the FHIR sender. */
  stop(graceMs?: number): Promise<void>;
}

export function startBackground(
  c: ServiceConfig,
  o: {
    dbPath: string;
    jobs: JobQueue;
    audit: AuditLog;
    fhirOutbox: FhirOutbox;
    log: (msg: string) => void;
    onWorkerStart?: (pid: number) => void;
  },
): Background {
  const files = filesDir(c);
  const pool = new WorkerPool({
    workers: c.workers,
    dbPath: o.dbPath,
    databaseUrl: c.databaseUrl,
    filesDir: files,
    modelsDir: c.modelsDir,
    leaseMs: c.leaseMs,
    heartbeatMs: c.heartbeatMs,
    pollMs: c.pollMs,
    maxAttempts: c.maxAttempts,
    dicomweb: c.dicomweb,
    dicomwebTimeoutMs: c.dicomwebTimeoutMs,
    maxInputBytes: c.maxUploadBytes,
    maxVoxelBytes: c.maxVoxelBytes,
    maxDecompressedBytes: c.maxDecompressedBytes,
    fhir: c.fhir,
    log: o.log,
    onStart: o.onWorkerStart,
  });
  pool.start();
  const sender = c.fhir
    ? new FhirSender({
        outbox: o.fhirOutbox,
        server: { url: c.fhir.url, headers: c.fhir.headers },
        timeoutMs: c.dicomwebTimeoutMs,
        retryMs: c.fhir.retryMs ?? 5_000,
        maxAttempts: c.fhir.maxAttempts ?? 8,
        pollMs: c.pollMs,
        jobs: o.jobs,
        audit: o.audit,
        log: o.log,
      })
    : undefined;
  sender?.start();
  const stopSweep = sweepSharedFolder(files, o.jobs, orphanRule(c), Math.max(c.leaseMs, 10_000), o.log);
  return {
    pool,
    async stop(graceMs?: number) {
      stopSweep();
      await pool.stop(graceMs);
      await sender?.stop();
    },
  };
}
