/**
 * The pool of worker processes (child processes, not threads: a crash or an
 * out-of-memory kill in libtorch takes one worker, never the server). Each
 * worker claims jobs from the database itself; the pool only starts them,
 * wakes them when a job arrives, restarts one that dies (removing the
 * temporary files it left), and stops them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, unlinkSync } from 'node:fs';
import { cpus } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DicomwebServer, FhirSettings } from '../config.ts';

export interface WorkerSettings {
  dbPath: string;
  /** postgres://... when the job queue is on PostgreSQL (dbPath then holds only the keys). */
  databaseUrl?: string;
  /** Holds uploads/, results/ and the de-identification secret (the shared folder on a multi-host deployment). */
  filesDir: string;
  modelsDir: string;
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  maxAttempts: number;
  /** The PACS DICOMweb jobs may read from and store to. */
  dicomweb: DicomwebServer[];
  dicomwebTimeoutMs: number;
  /** Largest series retrieved from a PACS, in bytes (the upload limit: it is the same kind of input). */
  maxInputBytes: number;
  /** Largest decoded voxel buffer of DICOM input (a zip, a retrieved series). */
  maxVoxelBytes: number;
  /** Largest inflated size of an uploaded DICOM zip. */
  maxDecompressedBytes: number;
  /** The FHIR server results are POSTed to (null: none). */
  fhir?: FhirSettings | null;
  /** The worker's number in the pool (part of its lease owner name). */
  slot: number;
}

export interface PoolOptions extends Omit<WorkerSettings, 'slot'> {
  workers: number;
  /** libtorch threads per worker; default: the cores shared out among the workers. */
  threadsPerWorker?: number;
  log?: (msg: string) => void;
  /** Told of every worker started (tests kill them). */
  onStart?: (pid: number, slot: number) => void;
}

/** The worker entry beside this file: the TypeScript source runs through tsx, a build runs as JavaScript. */
function workerEntry(): { file: string; execArgv: string[] } {
  const ext = extname(fileURLToPath(import.meta.url));
  return { file: fileURLToPath(new URL(`./main${ext}`, import.meta.url)), execArgv: ext === '.ts' ? ['--import', 'tsx'] : [] };
}

/** Removes the temporary files an atomic write of process pid left in dir (see @medseg/medseg util/atomic-write). */
export function removeTempFilesOf(dir: string, pid: number): number {
  let n = 0;
  for (const f of readdirSync(dir)) {
    if (f.startsWith('.') && f.includes(`.tmp-${pid}-`)) {
      unlinkSync(join(dir, f));
      n++;
    }
  }
  return n;
}

export class WorkerPool {
  private readonly children = new Map<number, ChildProcess>();
  private stopping = false;
  private readonly restarts: number[] = [];

  constructor(private readonly o: PoolOptions) {}

  start(): void {
    for (let slot = 0; slot < this.o.workers; slot++) this.spawn(slot);
  }

  pids(): number[] {
    return [...this.children.values()].map((c) => c.pid!).filter((p) => p !== undefined);
  }

  private spawn(slot: number): void {
    const { file, execArgv } = workerEntry();
    const threads = this.o.threadsPerWorker ?? Math.max(1, Math.floor(cpus().length / this.o.workers));
    const settings: WorkerSettings = { ...this.o, slot };
    delete (settings as Partial<PoolOptions>).log;
    delete (settings as Partial<PoolOptions>).onStart;
    const child = fork(file, [], {
      execArgv,
      env: { ...process.env, MEDSEG_THREADS: String(threads), MEDSEG_WORKER_SETTINGS: JSON.stringify(settings) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.children.set(slot, child);
    if (child.pid !== undefined) this.o.onStart?.(child.pid, slot);
    child.on('error', (e) => this.o.log?.(`worker ${slot} could not run: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (this.children.get(slot) === child) this.children.delete(slot);
      if (child.pid !== undefined) {
        try {
          removeTempFilesOf(join(this.o.filesDir, 'results'), child.pid);
        } catch {
          // the results folder may be gone with a deleted data folder
        }
      }
      if (this.stopping) return;
      this.o.log?.(`worker ${slot} (pid ${child.pid}) ended (${signal ?? `exit ${code}`}); starting another`);
      // Back off when workers keep dying (a broken install must not spin).
      const now = Date.now();
      this.restarts.push(now);
      while (this.restarts.length && this.restarts[0]! < now - 60_000) this.restarts.shift();
      const delay = Math.min(30_000, 200 * 2 ** Math.max(0, this.restarts.length - 3));
      setTimeout(() => {
        if (!this.stopping && !this.children.has(slot)) this.spawn(slot);
      }, delay).unref();
    });
  }

  /** Tells idle workers a job is waiting. */
  wake(): void {
    for (const c of this.children.values()) if (c.connected) c.send({ type: 'wake' }, () => undefined);
  }

  /** Stops every worker: SIGTERM (each finishes its job in hand), SIGKILL after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const all = [...this.children.values()];
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    this.children.clear();
  }
}
