/**
 * The running service: the data folder (database, uploads, results) made
 * ready, the job queue opened (the data folder's SQLite file, or
 * PostgreSQL when databaseUrl is set), what a crash left behind cleared away (expired leases back in the
 * queue, half-received uploads and unrecorded result files removed), the
 * worker pool started, the HTTP API listening, and autorouting (when rules
 * are set) watching its PACS. On a first start, with no
 * key in the database, an admin key is made and handed back to be shown once.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './http/app.ts';
import { ModelCatalog } from './models/catalog.ts';
import { openDatabase, type Db } from './store/db.ts';
import { JobStore } from './store/jobs.ts';
import { SqliteJobQueue, openJobQueue, type JobQueue } from './store/queue.ts';
import { KeyStore } from './store/keys.ts';
import type { WorkerPool } from './worker/pool.ts';
import { Autorouter } from './dicomweb/autoroute.ts';
import { AuditLog } from './audit/log.ts';
import { MonitoringStore } from './monitoring/store.ts';
import { JobDeidentify } from './deid/job-deid.ts';
import { ensureDeidSecret } from './deid/secret.ts';
import { FhirOutbox } from './fhir/outbox.ts';
import { CorrectionStore } from './corrections/store.ts';
import { startBackground, type Background } from './background.ts';
import { ConfigError, filesDir, type ServiceConfig } from './config.ts';
import { lockDataFolder, orphanRule, removeOrphanFiles } from './data-folder.ts';

export { DataFolderBusy, removeOrphanFiles } from './data-folder.ts';
import { createSecureContext } from 'node:tls';

/** The viewer's build beside this package in the workspace (npm run build:web makes it), if there is one. */
function builtViewer(): string | undefined {
  const dir = fileURLToPath(new URL('../../web/dist/', import.meta.url));
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}

export interface Service {
  url: string;
  /** The admin key made on this start (first start only): shown once, stored only as a hash. */
  adminKey: string | undefined;
  app: FastifyInstance;
  pool: WorkerPool;
  jobs: JobQueue;
  /** What the start-up found and cleared. */
  recovered: { requeued: number; removedFiles: number };
  close(): Promise<void>;
}

/** The TLS key and certificate, read and checked as a pair; undefined without TLS. */
function tlsFiles(c: ServiceConfig): { key: Buffer; cert: Buffer } | undefined {
  if (!c.tlsKey || !c.tlsCert) return undefined;
  let key: Buffer;
  let cert: Buffer;
  try {
    key = readFileSync(c.tlsKey);
    cert = readFileSync(c.tlsCert);
  } catch (e) {
    throw new ConfigError(`cannot read the TLS files: ${(e as Error).message}`);
  }
  try {
    createSecureContext({ key, cert });
  } catch (e) {
    throw new ConfigError(`tlsKey ${c.tlsKey} and tlsCert ${c.tlsCert} are not a PEM key and its certificate: ${(e as Error).message}`);
  }
  return { key, cert };
}

export async function startService(c: ServiceConfig, o: { onWorkerStart?: (pid: number) => void } = {}): Promise<Service> {
  const files = filesDir(c);
  for (const d of [c.dataDir, join(files, 'uploads'), join(files, 'results')]) mkdirSync(d, { recursive: true });
  if (!existsSync(c.modelsDir)) mkdirSync(c.modelsDir, { recursive: true });
  const unlock = lockDataFolder(c.dataDir);
  let db: Db | undefined;
  let jobs: JobQueue | undefined;
  let background: Background | undefined;
  let autorouter: Autorouter | undefined;
  try {
    const dbPath = join(c.dataDir, 'medseg.sqlite');
    db = openDatabase(dbPath);
    // The keys stay in the data folder's database; the jobs go where the queue is.
    jobs = c.databaseUrl
      ? await openJobQueue({ dbPath, databaseUrl: c.databaseUrl }, { maxAttempts: c.maxAttempts, poolSize: 8 })
      : new SqliteJobQueue(new JobStore(db, { maxAttempts: c.maxAttempts }));
    const keys = new KeyStore(db);
    const https = tlsFiles(c);
    const audit = new AuditLog(db);
    ensureDeidSecret(files);
    let adminKey: string | undefined;
    if (keys.count() === 0) {
      const made = await keys.create({ name: 'admin (made on first start)', scopes: ['admin'] });
      adminKey = made.secret;
      audit.append({ action: 'key.create', outcome: 'created', keyId: null, detail: `key ${made.key.id} (admin, made on first start)` });
    }
    const fhirOutbox = new FhirOutbox(db);
    const requeued = await jobs.requeueExpired();
    const removedFiles = await removeOrphanFiles(files, jobs, orphanRule(c));
    const app = await buildApp({
      jobs,
      keys,
      catalog: new ModelCatalog(c.modelsDir),
      filesDir: files,
      maxUploadBytes: c.maxUploadBytes,
      maxVoxelBytes: c.maxVoxelBytes,
      maxDecompressedBytes: c.maxDecompressedBytes,
      rateLimit: c.rateLimit,
      dicomweb: c.dicomweb,
      dicomwebLimits: { timeoutMs: c.dicomwebTimeoutMs, maxBytes: c.maxUploadBytes },
      audit,
      monitoring: { store: new MonitoringStore(db), settings: c.monitoring },
      deidentify: { jobs: new JobDeidentify(db), models: c.deidentifyModels },
      fhirOutbox,
      corrections: new CorrectionStore(db),
      https,
      onSubmitted: () => background?.pool.wake(),
      viewerDir: builtViewer(),
      logger: c.logLevel === 'silent' ? false : { level: c.logLevel, stream: process.stderr },
    });
    background = startBackground(c, { dbPath, jobs, audit, fhirOutbox, log: (m) => app.log.warn(m), onWorkerStart: o.onWorkerStart });
    const pool = background.pool;
    const address = await app.listen({ host: c.host, port: c.port });
    if (c.autoroute.length) {
      const catalog = new ModelCatalog(c.modelsDir);
      autorouter = new Autorouter({
        rules: c.autoroute,
        servers: c.dicomweb,
        timeoutMs: c.dicomwebTimeoutMs,
        pollMs: c.autoroutePollMs,
        jobs,
        catalog,
        onSubmitted: () => background?.pool.wake(),
        log: (m) => app.log.warn(m),
        audit,
        deidentifyModels: c.deidentifyModels,
      });
      autorouter.start();
    }
    const openDb = db;
    const openJobs = jobs;
    const openBackground = background;
    const openRouter = autorouter;
    return {
      url: address,
      adminKey,
      app,
      pool,
      jobs,
      recovered: { requeued, removedFiles },
      async close() {
        await openRouter?.stop();
        await app.close();
        await openBackground.stop();
        await openJobs.close();
        openDb.close();
        unlock();
      },
    };
  } catch (e) {
    await autorouter?.stop();
    await background?.stop(1000);
    await jobs?.close().catch(() => undefined);
    db?.close();
    unlock();
    throw e;
  }
}
