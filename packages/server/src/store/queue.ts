/**
 * The job queue as the service uses it, whichever database holds it: the
 * embedded SQLite file of the data folder (one machine), or PostgreSQL (API
 * servers and workers on several machines sharing one queue). Both keep the
 * same contract (see queue.test.ts, run against both): a job is claimed by
 * one worker under a lease, renewed by heartbeats; an expired lease makes it
 * claimable again with the next attempt; an outcome is recorded only under
 * the lease it was claimed with, so a job completes at most once.
 */
import { openDatabase, type Db } from './db.ts';
import { JobStore, type Job, type JobState, type Lease, type NewJob } from './jobs.ts';
import { PgJobQueue } from './pg-jobs.ts';

export interface Claim {
  job: Job;
  lease: Lease;
}

export interface JobQueue {
  readonly kind: 'sqlite' | 'postgres';
  submit(j: NewJob): Promise<Job>;
  get(id: string): Promise<Job | undefined>;
  /** Claims the oldest claimable job (queued, or running under an expired lease) for owner; null when there is none. */
  claim(owner: string, leaseMs: number): Promise<Claim | null>;
  /** Renews the lease and records progress; false when the lease is lost. */
  heartbeat(lease: Lease, leaseMs: number, progress: number): Promise<boolean>;
  /** Records the result under the lease, with its 'completed' event, in one transaction; false (nothing recorded) when the lease is lost. */
  complete(lease: Lease, resultPath: string, output?: string | null): Promise<boolean>;
  fail(lease: Lease, message: string): Promise<boolean>;
  cancel(id: string): Promise<{ before: JobState; after: JobState } | undefined>;
  /** Puts running jobs whose lease has expired back in the queue; their number. */
  requeueExpired(): Promise<number>;
  counts(): Promise<Record<JobState, number>>;
  /** How many times an event of this kind was recorded for the job. */
  eventCount(id: string, kind: string): Promise<number>;
  /** Every input and result file the jobs refer to. */
  referencedFiles(): Promise<{ inputs: Set<string>; results: Set<string> }>;
  /** Whether an autorouting rule has recorded the series ('' marks the rule's first search). */
  routeSeen(rule: string, seriesUid: string): Promise<boolean>;
  /** Records series as seen by a rule without making jobs of them. */
  routeRecord(rule: string, seriesUids: string[]): Promise<void>;
  /** Submits a rule's job and records its series as seen, atomically; undefined when the series was seen already. */
  submitRouted(rule: string, seriesUid: string, j: NewJob): Promise<Job | undefined>;
  close(): Promise<void>;
}

/** The SQLite store behind the queue interface (its calls are synchronous; each answer is already settled). */
export class SqliteJobQueue implements JobQueue {
  readonly kind = 'sqlite';

  constructor(
    readonly store: JobStore,
    private readonly db?: Db,
  ) {}

  async submit(j: NewJob) {
    return this.store.submit(j);
  }
  async get(id: string) {
    return this.store.get(id);
  }
  async claim(owner: string, leaseMs: number) {
    return this.store.claim(owner, leaseMs);
  }
  async heartbeat(lease: Lease, leaseMs: number, progress: number) {
    return this.store.heartbeat(lease, leaseMs, progress);
  }
  async complete(lease: Lease, resultPath: string, output: string | null = null) {
    return this.store.complete(lease, resultPath, output);
  }
  async fail(lease: Lease, message: string) {
    return this.store.fail(lease, message);
  }
  async cancel(id: string) {
    return this.store.cancel(id);
  }
  async requeueExpired() {
    return this.store.requeueExpired();
  }
  async counts() {
    return this.store.counts();
  }
  async eventCount(id: string, kind: string) {
    return this.store.eventCount(id, kind);
  }
  async referencedFiles() {
    return this.store.referencedFiles();
  }
  async routeSeen(rule: string, seriesUid: string) {
    return this.store.routeSeen(rule, seriesUid);
  }
  async routeRecord(rule: string, seriesUids: string[]) {
    this.store.routeRecord(rule, seriesUids);
  }
  async submitRouted(rule: string, seriesUid: string, j: NewJob) {
    return this.store.submitRouted(rule, seriesUid, j);
  }
  /** Closes the database when the queue opened it. */
  async close() {
    this.db?.close();
  }
}

/** Where the queue is: a PostgreSQL URL when set, else the SQLite file. */
export interface QueueLocation {
  dbPath: string;
  databaseUrl?: string | undefined;
  /** The database at dbPath, already open: a SQLite queue uses it (so its job changes and the audit records there share transactions) and leaves it open. */
  db?: Db;
}

export interface QueueOptions {
  maxAttempts?: number;
  /** Connections of a PostgreSQL queue's pool. */
  poolSize?: number;
  /** Told of connection errors between queries (PostgreSQL restarted, network). */
  log?: (msg: string) => void;
}

/** Opens the queue at its location (PostgreSQL when databaseUrl is set), with its schema in place. */
export async function openJobQueue(at: QueueLocation, o: QueueOptions = {}): Promise<JobQueue> {
  if (at.databaseUrl) {
    return PgJobQueue.open(at.databaseUrl, o);
  }
  if (at.db) return new SqliteJobQueue(new JobStore(at.db, { maxAttempts: o.maxAttempts }));
  const db = openDatabase(at.dbPath);
  return new SqliteJobQueue(new JobStore(db, { maxAttempts: o.maxAttempts }), db);
}
