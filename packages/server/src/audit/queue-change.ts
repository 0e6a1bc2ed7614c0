/**
 * A change to a job on the queue together with its audit record (and the
 * other service-database records that go with it: a job's de-identification
 * mark, its monitoring record).
 *
 * On the SQLite queue in the audit log's own database, the change, `then`'s
 * writes and the audit record are one transaction: written together or not at
 * all. On the PostgreSQL queue the job change commits in PostgreSQL and `then`
 * and the audit record are written to the service's SQLite file right after
 * the queue call returns: a process killed between the two leaves the change
 * without its record (a known limitation, see the README). What `before`
 * writes goes in before the queue call, so such a crash leaves at most an
 * unused row, never a job without it.
 */
import type { JobStore } from '../store/jobs.ts';
import { SqliteJobQueue, type JobQueue } from '../store/queue.ts';
import type { AuditEntry, AuditLog } from './log.ts';

/** The queue calls that change a job and are audited. */
export type AuditedChange = 'submit' | 'submitRouted' | 'cancel' | 'complete' | 'fail';

export type ChangeResult<K extends AuditedChange> = Awaited<ReturnType<JobQueue[K]>>;

/**
 * Calls the queue's `op` with `args`, then `then` with its result (its SQLite
 * writes and the audit entry it returns, null for none), atomically where the
 * queue shares the audit log's database. `before` writes what must be in the
 * service database before the queue holds the change (a job's
 * de-identification mark: no worker may see the job without it).
 */
export async function changeJob<K extends AuditedChange>(
  jobs: JobQueue,
  audit: AuditLog | undefined,
  op: K,
  args: Parameters<JobQueue[K]>,
  then: (r: ChangeResult<K>) => AuditEntry | null,
  before?: () => void,
): Promise<ChangeResult<K>> {
  if (audit && jobs instanceof SqliteJobQueue && audit.sharesDatabase(jobs.store.db)) {
    const call = jobs.store[op] as (...a: unknown[]) => ChangeResult<K>;
    return audit.together(() => {
      before?.();
      return call.apply<JobStore, unknown[], ChangeResult<K>>(jobs.store, args);
    }, then);
  }
  before?.();
  const call = jobs[op] as (...a: unknown[]) => Promise<ChangeResult<K>>;
  const r = await call.apply(jobs, args);
  const e = then(r);
  if (e) audit?.append(e);
  return r;
}
