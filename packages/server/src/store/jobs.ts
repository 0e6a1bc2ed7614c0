/**
 * The persisted job queue. A job is queued on submission; a worker claims
 * it with a lease (owner + attempt + expiry) and renews the lease with each
 * heartbeat; a lease that expires (its worker died or hangs) makes the job
 * claimable again, with the next attempt number. Completion and failure are
 * conditional on the lease the worker holds (owner, attempt, still running),
 * so when two workers race after an expiry, or a job was cancelled, at most
 * one of them records an outcome: a job completes exactly once. Every
 * transition is also appended to job_events.
 */
import type { Db } from './db.ts';

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINISHED: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

export interface Job {
  id: string;
  model: string;
  modelVersion: string;
  inputPath: string;
  inputFormat: string;
  state: JobState;
  progress: number;
  attempt: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  resultPath: string | null;
  error: string | null;
  keyId: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** JSON: where the input is when it is not a file (a DICOMweb series reference); null for uploads. */
  inputRef: string | null;
  /** JSON: facts about the result beyond its file (e.g. the UIDs of the SEG stored to the PACS). */
  output: string | null;
}

/** What a worker holds while it works on a job: the outcome is recorded only under this lease. */
export interface Lease {
  jobId: string;
  owner: string;
  attempt: number;
}

export interface NewJob {
  id: string;
  model: string;
  modelVersion: string;
  inputPath: string;
  inputFormat: string;
  keyId: string;
  inputRef?: string | null;
}

/** A jobs row as a driver returns it: SQLite gives numbers, PostgreSQL gives its BIGINT times as strings. */
export interface JobRow {
  id: string;
  model: string;
  model_version: string;
  input_path: string;
  input_format: string;
  state: JobState;
  progress: number;
  attempt: number;
  lease_owner: string | null;
  lease_until: number | string | null;
  result_path: string | null;
  error: string | null;
  key_id: string;
  created_at: number | string;
  started_at: number | string | null;
  finished_at: number | string | null;
  input_ref: string | null;
  output: string | null;
}

const ms = (v: number | string | null) => (v === null ? null : Number(v));

export function toJob(r: JobRow): Job {
  return {
    id: r.id,
    model: r.model,
    modelVersion: r.model_version,
    inputPath: r.input_path,
    inputFormat: r.input_format,
    state: r.state,
    progress: r.progress,
    attempt: r.attempt,
    leaseOwner: r.lease_owner,
    leaseUntil: ms(r.lease_until),
    resultPath: r.result_path,
    error: r.error,
    keyId: r.key_id,
    createdAt: Number(r.created_at),
    startedAt: ms(r.started_at),
    finishedAt: ms(r.finished_at),
    inputRef: r.input_ref,
    output: r.output,
  };
}

export interface JobStoreOptions {
  /** Clock in milliseconds (tests drive it). */
  now?: () => number;
  /** A job whose worker died this many times is failed instead of claimed again (a case that kills its worker must not kill them all). */
  maxAttempts?: number;
}

export class JobStore {
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly stmt;

  constructor(
    readonly db: Db,
    o: JobStoreOptions = {},
  ) {
    this.now = o.now ?? Date.now;
    this.maxAttempts = o.maxAttempts ?? 3;
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO jobs (id, model, model_version, input_path, input_format, state, key_id, created_at, input_ref)
         VALUES (@id, @model, @modelVersion, @inputPath, @inputFormat, 'queued', @keyId, @now, @inputRef)`,
      ),
      get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      event: db.prepare('INSERT INTO job_events (job_id, at, kind, attempt, owner, detail) VALUES (?, ?, ?, ?, ?, ?)'),
      next: db.prepare(
        `SELECT id, attempt, state FROM jobs
         WHERE state = 'queued' OR (state = 'running' AND lease_until < ?)
         ORDER BY created_at, rowid LIMIT 1`,
      ),
      take: db.prepare(
        `UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = ?, lease_until = ?, started_at = ?, progress = 0
         WHERE id = ? AND attempt = ?`,
      ),
      giveUp: db.prepare(`UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND attempt = ?`),
      renew: db.prepare(`UPDATE jobs SET lease_until = ?, progress = ? WHERE id = ? AND lease_owner = ? AND attempt = ? AND state = 'running'`),
      finish: db.prepare(
        `UPDATE jobs SET state = ?, progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END, result_path = ?, error = ?, output = ?, finished_at = ?,
           lease_owner = NULL, lease_until = NULL
         WHERE id = ? AND lease_owner = ? AND attempt = ? AND state = 'running'`,
      ),
      cancel: db.prepare(
        `UPDATE jobs SET state = 'cancelled', finished_at = ?, lease_owner = NULL, lease_until = NULL
         WHERE id = ? AND state IN ('queued', 'running')`,
      ),
      requeue: db.prepare(
        `UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running' AND lease_until < ? RETURNING id, attempt`,
      ),
      counts: db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state'),
      events: db.prepare('SELECT COUNT(*) AS n FROM job_events WHERE job_id = ? AND kind = ?'),
      paths: db.prepare('SELECT input_path, result_path FROM jobs'),
      routeSeen: db.prepare('SELECT 1 FROM autoroute_seen WHERE rule = ? AND series_uid = ?'),
      routeAdd: db.prepare('INSERT OR IGNORE INTO autoroute_seen (rule, series_uid, seen_at, job_id) VALUES (?, ?, ?, ?)'),
    };
  }

  private event(jobId: string, kind: string, attempt: number, owner: string | null, detail: string | null = null): void {
    this.stmt.event.run(jobId, this.now(), kind, attempt, owner, detail);
  }

  submit(j: NewJob): Job {
    this.db.transaction(() => {
      this.stmt.insert.run({ ...j, inputRef: j.inputRef ?? null, now: this.now() });
      this.event(j.id, 'submitted', 0, null, j.keyId);
    })();
    return this.get(j.id)!;
  }

  get(id: string): Job | undefined {
    const r = this.stmt.get.get(id) as JobRow | undefined;
    return r && toJob(r);
  }

  /**
   * Claims the oldest claimable job (queued, or running under an expired
   * lease) for `owner`, with a lease of leaseMs. A job already tried
   * maxAttempts times is failed instead and the next one is looked at.
   */
  claim(owner: string, leaseMs: number): { job: Job; lease: Lease } | null {
    const tx = this.db.transaction((): { job: Job; lease: Lease } | null => {
      for (;;) {
        const now = this.now();
        const r = this.stmt.next.get(now) as { id: string; attempt: number; state: JobState } | undefined;
        if (!r) return null;
        if (r.state === 'running') this.event(r.id, 'lease-expired', r.attempt, null);
        if (r.attempt >= this.maxAttempts) {
          const msg = `gave up after ${r.attempt} attempts: the worker stopped each time (the case may be too large for this machine)`;
          this.stmt.giveUp.run(msg, now, r.id, r.attempt);
          this.event(r.id, 'failed', r.attempt, null, msg);
          continue;
        }
        this.stmt.take.run(owner, now + leaseMs, now, r.id, r.attempt);
        const lease = { jobId: r.id, owner, attempt: r.attempt + 1 };
        this.event(r.id, 'claimed', lease.attempt, owner);
        return { job: this.get(r.id)!, lease };
      }
    });
    // IMMEDIATE: take the write lock before reading, so two workers never pick the same row.
    return tx.immediate();
  }

  /** Renews the lease and records progress; false when the lease is lost (expired and re-claimed, or the job was cancelled). */
  heartbeat(lease: Lease, leaseMs: number, progress: number): boolean {
    const p = Math.min(1, Math.max(0, progress));
    return this.stmt.renew.run(this.now() + leaseMs, p, lease.jobId, lease.owner, lease.attempt).changes === 1;
  }

  /** Records the result (and facts about it, as JSON) under the lease; false (nothing recorded) when the lease is no longer this worker's. */
  complete(lease: Lease, resultPath: string, output: string | null = null): boolean {
    return this.finish(lease, 'done', resultPath, null, output);
  }

  /** Records a failure (a message for the user) under the lease; false when the lease is no longer this worker's. */
  fail(lease: Lease, message: string): boolean {
    return this.finish(lease, 'failed', null, message);
  }

  private finish(lease: Lease, state: 'done' | 'failed', resultPath: string | null, error: string | null, output: string | null = null): boolean {
    return this.db.transaction(() => {
      const ok = this.stmt.finish.run(state, state, resultPath, error, output, this.now(), lease.jobId, lease.owner, lease.attempt).changes === 1;
      this.event(lease.jobId, ok ? (state === 'done' ? 'completed' : 'failed') : 'outcome-rejected', lease.attempt, lease.owner, error);
      return ok;
    })();
  }

  /** Cancels a queued or running job; the state it had, or undefined when there is no such job. */
  cancel(id: string): { before: JobState; after: JobState } | undefined {
    return this.db.transaction(() => {
      const j = this.get(id);
      if (!j) return undefined;
      if (this.stmt.cancel.run(this.now(), id).changes === 1) this.event(id, 'cancelled', j.attempt, null);
      return { before: j.state, after: this.get(id)!.state };
    })();
  }

  /** Puts running jobs whose lease has expired back in the queue (at start-up, after a crash); their number. */
  requeueExpired(): number {
    return this.db.transaction(() => {
      const rows = this.stmt.requeue.all(this.now()) as { id: string; attempt: number }[];
      for (const r of rows) this.event(r.id, 'requeued', r.attempt, null);
      return rows.length;
    })();
  }

  counts(): Record<JobState, number> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of this.stmt.counts.all() as { state: JobState; n: number }[]) out[r.state] = r.n;
    return out;
  }

  /** How many times an event of this kind was recorded for the job ('completed' must be at most 1). */
  eventCount(id: string, kind: string): number {
    return (this.stmt.events.get(id, kind) as { n: number }).n;
  }

  /** Every input and result file the jobs refer to (to tell orphans left by a crash). */
  referencedFiles(): { inputs: Set<string>; results: Set<string> } {
    const inputs = new Set<string>();
    const results = new Set<string>();
    for (const r of this.stmt.paths.all() as { input_path: string; result_path: string | null }[]) {
      inputs.add(r.input_path);
      if (r.result_path) results.add(r.result_path);
    }
    return { inputs, results };
  }

  /** Whether autorouting rule has recorded the series (the series '' marks the rule's first search). */
  routeSeen(rule: string, seriesUid: string): boolean {
    return this.stmt.routeSeen.get(rule, seriesUid) !== undefined;
  }

  /** Records series as seen by a rule without making jobs of them (a rule's first search). */
  routeRecord(rule: string, seriesUids: string[]): void {
    this.db.transaction(() => {
      for (const uid of seriesUids) this.stmt.routeAdd.run(rule, uid, this.now(), null);
    })();
  }

  /** Submits the job of a series a rule found and records the series as seen, together; undefined (nothing submitted) when it was seen already. */
  submitRouted(rule: string, seriesUid: string, j: NewJob): Job | undefined {
    return this.db.transaction(() => {
      if (this.stmt.routeAdd.run(rule, seriesUid, this.now(), j.id).changes === 0) return undefined;
      return this.submit(j);
    })();
  }
}
