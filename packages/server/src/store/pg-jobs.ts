/**
 * The job queue on PostgreSQL (node-postgres), for API servers and workers
 * on several machines. A claim locks the oldest claimable row with
 * FOR UPDATE SKIP LOCKED, so concurrent workers each take a different job
 * without waiting on each other; leases, heartbeats, expiry and the
 * maxAttempts rule are those of the SQLite store (jobs.ts). An outcome and
 * its event are one statement, conditional on the lease, so it is recorded
 * once or not at all. Times are milliseconds of the database's clock (one
 * clock for every host), or of an injected clock in tests.
 */
import pg from 'pg';
import type { QueueOptions, JobQueue, Claim } from './queue.ts';
import { JOB_STATES, toJob, type Job, type JobRow, type JobState, type Lease, type NewJob } from './jobs.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq           BIGSERIAL UNIQUE,
  id            TEXT PRIMARY KEY,
  model         TEXT NOT NULL,
  model_version TEXT NOT NULL,
  input_path    TEXT NOT NULL,
  input_format  TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  progress      DOUBLE PRECISION NOT NULL DEFAULT 0,
  attempt       INTEGER NOT NULL DEFAULT 0,
  lease_owner   TEXT,
  lease_until   BIGINT,
  result_path   TEXT,
  error         TEXT,
  key_id        TEXT NOT NULL,
  created_at    BIGINT NOT NULL,
  started_at    BIGINT,
  finished_at   BIGINT,
  input_ref     TEXT,
  output        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_claimable ON jobs (created_at, seq) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS job_events (
  seq     BIGSERIAL PRIMARY KEY,
  job_id  TEXT NOT NULL,
  at      BIGINT NOT NULL,
  kind    TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  owner   TEXT,
  detail  TEXT
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, kind);
CREATE TABLE IF NOT EXISTS autoroute_seen (
  rule       TEXT NOT NULL,
  series_uid TEXT NOT NULL,
  seen_at    BIGINT NOT NULL,
  job_id     TEXT,
  PRIMARY KEY (rule, series_uid)
);
`;

/** Serialises schema creation among processes starting at once (CREATE ... IF NOT EXISTS alone races). */
const SCHEMA_LOCK = 0x6d656473; // 'meds'

/** $1 is the injected clock or NULL: then the database's clock, in milliseconds. */
const NOW = `COALESCE($1::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)`;

type Exec = Pick<pg.PoolClient, 'query'>;

export class PgJobQueue implements JobQueue {
  readonly kind = 'postgres';
  private readonly maxAttempts: number;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly now: (() => number) | undefined,
    o: QueueOptions,
  ) {
    this.maxAttempts = o.maxAttempts ?? 3;
  }

  /** Connects (a pool of o.poolSize connections) and puts the schema in place. */
  static async open(url: string, o: QueueOptions & { now?: () => number } = {}): Promise<PgJobQueue> {
    const pool = new pg.Pool({ connectionString: url, max: o.poolSize ?? 4, connectionTimeoutMillis: 30_000 });
    // An idle connection that breaks (the database restarted) is dropped from the pool; the next query opens another.
    pool.on('error', (e) => o.log?.(`PostgreSQL connection lost: ${e.message}`));
    const q = new PgJobQueue(pool, o.now, o);
    try {
      await q.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
        await c.query(SCHEMA);
      });
    } catch (e) {
      await pool.end();
      throw e;
    }
    return q;
  }

  private t(): number | null {
    return this.now ? this.now() : null;
  }

  private async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const v = await f(c);
      await c.query('COMMIT');
      c.release();
      return v;
    } catch (e) {
      // A failed rollback means a broken connection: it is destroyed, not reused.
      await c.query('ROLLBACK').then(
        () => c.release(),
        (re: Error) => c.release(re),
      );
      throw e;
    }
  }

  private async event(c: Exec, jobId: string, kind: string, attempt: number, owner: string | null, detail: string | null = null): Promise<void> {
    await c.query(`INSERT INTO job_events (job_id, at, kind, attempt, owner, detail) VALUES ($2, ${NOW}, $3, $4, $5, $6)`, [
      this.t(),
      jobId,
      kind,
      attempt,
      owner,
      detail,
    ]);
  }

  async submit(j: NewJob): Promise<Job> {
    return this.tx((c) => this.insert(c, j));
  }

  private async insert(c: Exec, j: NewJob): Promise<Job> {
    const r = await c.query<JobRow>(
      `INSERT INTO jobs (id, model, model_version, input_path, input_format, state, key_id, created_at, input_ref)
       VALUES ($2, $3, $4, $5, $6, 'queued', $7, ${NOW}, $8) RETURNING *`,
      [this.t(), j.id, j.model, j.modelVersion, j.inputPath, j.inputFormat, j.keyId, j.inputRef ?? null],
    );
    await this.event(c, j.id, 'submitted', 0, null, j.keyId);
    return toJob(r.rows[0]!);
  }

  async get(id: string): Promise<Job | undefined> {
    const r = await this.pool.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
    return r.rows[0] && toJob(r.rows[0]);
  }

  async claim(owner: string, leaseMs: number): Promise<Claim | null> {
    return this.tx(async (c) => {
      for (;;) {
        const r = await c.query<{ id: string; attempt: number; state: JobState }>(
          `SELECT id, attempt, state FROM jobs
           WHERE state = 'queued' OR (state = 'running' AND lease_until < ${NOW})
           ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED`,
          [this.t()],
        );
        const row = r.rows[0];
        if (!row) return null;
        if (row.state === 'running') await this.event(c, row.id, 'lease-expired', row.attempt, null);
        if (row.attempt >= this.maxAttempts) {
          const msg = `gave up after ${row.attempt} attempts: the worker stopped each time (the case may be too large for this machine)`;
          await c.query(`UPDATE jobs SET state = 'failed', error = $2, finished_at = ${NOW}, lease_owner = NULL, lease_until = NULL WHERE id = $3`, [
            this.t(),
            msg,
            row.id,
          ]);
          await this.event(c, row.id, 'failed', row.attempt, null, msg);
          continue;
        }
        const taken = await c.query<JobRow>(
          `UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = $2, lease_until = ${NOW} + $3, started_at = ${NOW}, progress = 0
           WHERE id = $4 RETURNING *`,
          [this.t(), owner, leaseMs, row.id],
        );
        const lease = { jobId: row.id, owner, attempt: row.attempt + 1 };
        await this.event(c, row.id, 'claimed', lease.attempt, owner);
        return { job: toJob(taken.rows[0]!), lease };
      }
    });
  }

  async heartbeat(lease: Lease, leaseMs: number, progress: number): Promise<boolean> {
    const p = Math.min(1, Math.max(0, progress));
    const r = await this.pool.query(
      `UPDATE jobs SET lease_until = ${NOW} + $2, progress = $3 WHERE id = $4 AND lease_owner = $5 AND attempt = $6 AND state = 'running'`,
      [this.t(), leaseMs, p, lease.jobId, lease.owner, lease.attempt],
    );
    return r.rowCount === 1;
  }

  async complete(lease: Lease, resultPath: string, output: string | null = null): Promise<boolean> {
    return this.finish(lease, 'done', resultPath, null, output);
  }

  async fail(lease: Lease, message: string): Promise<boolean> {
    return this.finish(lease, 'failed', null, message);
  }

  /** The outcome and its event in one statement: recorded with 'completed'/'failed' under the lease, or only 'outcome-rejected'. */
  private async finish(
    lease: Lease,
    state: 'done' | 'failed',
    resultPath: string | null,
    error: string | null,
    output: string | null = null,
  ): Promise<boolean> {
    const r = await this.pool.query<{ kind: string }>(
      `WITH f AS (
         UPDATE jobs SET state = $2, progress = CASE WHEN $2 = 'done' THEN 1 ELSE progress END, result_path = $3, error = $4, output = $5,
           finished_at = ${NOW}, lease_owner = NULL, lease_until = NULL
         WHERE id = $6 AND lease_owner = $7 AND attempt = $8 AND state = 'running' RETURNING id)
       INSERT INTO job_events (job_id, at, kind, attempt, owner, detail)
       SELECT $6, ${NOW}, CASE WHEN EXISTS (SELECT 1 FROM f) THEN $9 ELSE 'outcome-rejected' END, $8, $7, $4
       RETURNING kind`,
      [this.t(), state, resultPath, error, output, lease.jobId, lease.owner, lease.attempt, state === 'done' ? 'completed' : 'failed'],
    );
    return r.rows[0]!.kind !== 'outcome-rejected';
  }

  async cancel(id: string): Promise<{ before: JobState; after: JobState } | undefined> {
    return this.tx(async (c) => {
      const r = await c.query<{ state: JobState; attempt: number }>('SELECT state, attempt FROM jobs WHERE id = $1 FOR UPDATE', [id]);
      const j = r.rows[0];
      if (!j) return undefined;
      if (j.state !== 'queued' && j.state !== 'running') return { before: j.state, after: j.state };
      await c.query(`UPDATE jobs SET state = 'cancelled', finished_at = ${NOW}, lease_owner = NULL, lease_until = NULL WHERE id = $2`, [this.t(), id]);
      await this.event(c, id, 'cancelled', j.attempt, null);
      return { before: j.state, after: 'cancelled' as const };
    });
  }

  async requeueExpired(): Promise<number> {
    const r = await this.pool.query(
      `WITH r AS (
         UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL
         WHERE state = 'running' AND lease_until < ${NOW} RETURNING id, attempt)
       INSERT INTO job_events (job_id, at, kind, attempt) SELECT id, ${NOW}, 'requeued', attempt FROM r`,
      [this.t()],
    );
    return r.rowCount ?? 0;
  }

  async counts(): Promise<Record<JobState, number>> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const r = await this.pool.query<{ state: JobState; n: string }>('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state');
    for (const row of r.rows) out[row.state] = Number(row.n);
    return out;
  }

  async eventCount(id: string, kind: string): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM job_events WHERE job_id = $1 AND kind = $2', [id, kind]);
    return Number(r.rows[0]!.n);
  }

  async referencedFiles(): Promise<{ inputs: Set<string>; results: Set<string> }> {
    const r = await this.pool.query<{ input_path: string; result_path: string | null }>('SELECT input_path, result_path FROM jobs');
    const inputs = new Set<string>();
    const results = new Set<string>();
    for (const row of r.rows) {
      inputs.add(row.input_path);
      if (row.result_path) results.add(row.result_path);
    }
    return { inputs, results };
  }

  async routeSeen(rule: string, seriesUid: string): Promise<boolean> {
    const r = await this.pool.query('SELECT 1 FROM autoroute_seen WHERE rule = $1 AND series_uid = $2', [rule, seriesUid]);
    return r.rowCount === 1;
  }

  async routeRecord(rule: string, seriesUids: string[]): Promise<void> {
    if (!seriesUids.length) return;
    await this.pool.query(
      `INSERT INTO autoroute_seen (rule, series_uid, seen_at) SELECT $2, uid, ${NOW} FROM unnest($3::text[]) AS uid ON CONFLICT DO NOTHING`,
      [this.t(), rule, seriesUids],
    );
  }

  async submitRouted(rule: string, seriesUid: string, j: NewJob): Promise<Job | undefined> {
    return this.tx(async (c) => {
      const seen = await c.query(`INSERT INTO autoroute_seen (rule, series_uid, seen_at, job_id) VALUES ($2, $3, ${NOW}, $4) ON CONFLICT DO NOTHING`, [
        this.t(),
        rule,
        seriesUid,
        j.id,
      ]);
      return seen.rowCount === 1 ? this.insert(c, j) : undefined;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
