/**
 * The running service: the data folder (database, uploads, results) made
 * ready, the job queue opened (the data folder's SQLite file, or
 * PostgreSQL when databaseUrl is set), what a crash left behind cleared away (expired leases back in the
 * queue, half-received uploads and unrecorded result files removed), the
 * worker pool started, the HTTP API listening, and autorouting (when rules
 * are set) watching its PACS. On a first start, with no
 * key in the database, an admin key is made and handed back to be shown once.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './http/app.ts';
import { ModelCatalog } from './models/catalog.ts';
import { openDatabase, type Db } from './store/db.ts';
import { JobStore } from './store/jobs.ts';
import { SqliteJobQueue, openJobQueue, type JobQueue } from './store/queue.ts';
import { KeyStore } from './store/keys.ts';
import { WorkerPool } from './worker/pool.ts';
import { Autorouter } from './dicomweb/autoroute.ts';
import { AuditLog } from './audit/log.ts';
import { MonitoringStore } from './monitoring/store.ts';
import { JobDeidentify } from './deid/job-deid.ts';
import { ensureDeidSecret } from './deid/secret.ts';
import { ConfigError, type ServiceConfig } from './config.ts';
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

/** Another server is using this data folder. */
export class DataFolderBusy extends Error {
  override readonly name = 'DataFolderBusy';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One server per data folder: server.pid names it; a stale file (its process gone) is taken over. */
function lockDataFolder(dataDir: string): () => void {
  const path = join(dataDir, 'server.pid');
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new DataFolderBusy(`another medseg server (pid ${pid}) uses the data folder ${dataDir}`);
      }
      unlinkSync(path);
    }
  }
  throw new DataFolderBusy(`cannot take the data folder ${dataDir}`);
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

/** Removes upload and result files no job refers to: what a crash mid-upload or mid-write left. */
export async function removeOrphanFiles(dataDir: string, jobs: JobQueue): Promise<number> {
  const { inputs, results } = await jobs.referencedFiles();
  let n = 0;
  for (const [sub, keep] of [
    ['uploads', inputs],
    ['results', results],
  ] as const) {
    for (const f of readdirSync(join(dataDir, sub))) {
      if (keep.has(`${sub}/${f}`)) continue;
      unlinkSync(join(dataDir, sub, f));
      n++;
    }
  }
  return n;
}

export async function startService(c: ServiceConfig, o: { onWorkerStart?: (pid: number) => void } = {}): Promise<Service> {
  for (const d of [c.dataDir, join(c.dataDir, 'uploads'), join(c.dataDir, 'results')]) mkdirSync(d, { recursive: true });
  if (!existsSync(c.modelsDir)) mkdirSync(c.modelsDir, { recursive: true });
  const unlock = lockDataFolder(c.dataDir);
  let db: Db | undefined;
  let jobs: JobQueue | undefined;
  let pool: WorkerPool | undefined;
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
    ensureDeidSecret(c.dataDir);
    let adminKey: string | undefined;
    if (keys.count() === 0) {
      const made = await keys.create({ name: 'admin (made on first start)', scopes: ['admin'] });
      adminKey = made.secret;
      audit.append({ action: 'key.create', outcome: 'created', keyId: null, detail: `key ${made.key.id} (admin, made on first start)` });
    }
    const requeued = await jobs.requeueExpired();
    const removedFiles = await removeOrphanFiles(c.dataDir, jobs);
    const app = await buildApp({
      jobs,
      keys,
      catalog: new ModelCatalog(c.modelsDir),
      dataDir: c.dataDir,
      maxUploadBytes: c.maxUploadBytes,
      maxVoxelBytes: c.maxVoxelBytes,
      maxDecompressedBytes: c.maxDecompressedBytes,
      rateLimit: c.rateLimit,
      dicomweb: c.dicomweb,
      audit,
      monitoring: { store: new MonitoringStore(db), settings: c.monitoring },
      deidentify: { jobs: new JobDeidentify(db), models: c.deidentifyModels },
      https,
      onSubmitted: () => pool?.wake(),
      viewerDir: builtViewer(),
      logger: c.logLevel === 'silent' ? false : { level: c.logLevel, stream: process.stderr },
    });
    pool = new WorkerPool({
      workers: c.workers,
      dbPath,
      databaseUrl: c.databaseUrl,
      dataDir: c.dataDir,
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
      log: (m) => app.log.warn(m),
      onStart: o.onWorkerStart,
    });
    pool.start();
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
        onSubmitted: () => pool?.wake(),
        log: (m) => app.log.warn(m),
        audit,
      });
      autorouter.start();
    }
    const openDb = db;
    const openJobs = jobs;
    const openPool = pool;
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
        await openPool.stop();
        await openJobs.close();
        openDb.close();
        unlock();
      },
    };
  } catch (e) {
    await autorouter?.stop();
    await pool?.stop(1000);
    await jobs?.close().catch(() => undefined);
    db?.close();
    unlock();
    throw e;
  }
}
