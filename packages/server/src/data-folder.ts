/**
 * The folders a medseg-serve process works in: its data folder, taken by one
 * process at a time (server.pid), and the folder of uploads and results,
 * cleared of what a crash left there. On a shared folder (several hosts on
 * one PostgreSQL queue) a file no job refers to may be another host's work in
 * progress, so only what is certainly dead goes: results of an attempt that
 * is no longer running, uploads older than a grace period.
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { JobQueue } from './store/queue.ts';

/** Another medseg-serve process is using this data folder. */
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

/**
 * One medseg-serve process (server or worker host) per data folder:
 * server.pid names it; a stale file (its process gone) is taken over.
 * Returns the release.
 */
export function lockDataFolder(dataDir: string): () => void {
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
        throw new DataFolderBusy(`another medseg process (pid ${pid}) uses the data folder ${dataDir}`);
      }
      unlinkSync(path);
    }
  }
  throw new DataFolderBusy(`cannot take the data folder ${dataDir}`);
}

/** The job and attempt a result file (or the temporary file of its atomic write) belongs to: `[.]<job>.a<attempt>.<ending>[.tmp-...]`. */
export function resultFileAttempt(name: string): { jobId: string; attempt: number } | undefined {
  const m = /^\.?([^.]+)\.a(\d+)\./.exec(name);
  return m ? { jobId: m[1]!, attempt: Number(m[2]) } : undefined;
}

export interface OrphanOptions {
  /**
   * The folder is shared with other hosts: keep the results of attempts that
   * are running (on whichever host) and uploads younger than graceMs (one
   * being submitted right now).
   */
  shared?: { graceMs: number };
}

/** Removes upload and result files no job refers to (see the top of this file for shared folders); returns how many. */
export async function removeOrphanFiles(filesDir: string, jobs: JobQueue, o: OrphanOptions = {}): Promise<number> {
  const { inputs, results } = await jobs.referencedFiles();
  let n = 0;
  const remove = (path: string) => {
    try {
      unlinkSync(path);
      n++;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // another host removed it first
    }
  };
  for (const f of readdirSync(join(filesDir, 'uploads'))) {
    if (inputs.has(`uploads/${f}`)) continue;
    const path = join(filesDir, 'uploads', f);
    if (o.shared) {
      let age: number;
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue; // gone meanwhile
      }
      if (age < o.shared.graceMs) continue;
    }
    remove(path);
  }
  // A result's maps (job-extras.ts) share its job-and-attempt prefix and stay with it.
  const attempts = new Set(
    [...results].flatMap((r) => {
      const of = resultFileAttempt(r.slice('results/'.length));
      return of ? [`${of.jobId}.a${of.attempt}`] : [];
    }),
  );
  for (const f of readdirSync(join(filesDir, 'results'))) {
    if (results.has(`results/${f}`)) continue;
    const own = resultFileAttempt(f);
    if (own && !f.startsWith('.') && attempts.has(`${own.jobId}.a${own.attempt}`)) continue;
    if (o.shared) {
      const of = resultFileAttempt(f);
      const job = of ? await jobs.get(of.jobId) : undefined;
      if (of && job?.state === 'running' && job.attempt === of.attempt) continue;
    }
    remove(join(filesDir, 'results', f));
  }
  return n;
}

/** The clean-up rule of a configuration: careful on a shared folder (grace of two leases for uploads). */
export function orphanRule(c: { sharedDir: string | null; leaseMs: number }): OrphanOptions {
  return c.sharedDir !== null ? { shared: { graceMs: 2 * c.leaseMs } } : {};
}

/**
 * On a shared folder, sweeps every `everyMs` (another host's crash leaves
 * files no start-up of this one would see); returns the stop. Nothing on a
 * folder of this host alone: its start-up sweep sees everything.
 */
export function sweepSharedFolder(filesDir: string, jobs: JobQueue, rule: OrphanOptions, everyMs: number, log: (msg: string) => void): () => void {
  if (!rule.shared) return () => undefined;
  let busy = false;
  const t = setInterval(() => {
    if (busy) return;
    busy = true;
    removeOrphanFiles(filesDir, jobs, rule)
      .catch((e: unknown) => log(`sweeping ${filesDir}: ${(e as Error).message}`))
      .finally(() => (busy = false));
  }, everyMs);
  t.unref();
  return () => clearInterval(t);
}
