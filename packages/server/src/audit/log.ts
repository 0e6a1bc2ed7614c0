/**
 * The append-only audit log, in the service database beside the jobs: who
 * (which key) did what (action) to which study and series, with which model
 * (id, version, SHA-256 of plan and weights), when, and the outcome. Each
 * record carries the SHA-256 of the record before it (a hash chain), so a
 * record changed, removed or slipped in afterwards breaks the chain at that
 * record (audit/verify.ts finds it). Triggers refuse UPDATE and DELETE on the
 * table, so the service itself cannot rewrite history; the chain catches
 * whoever edits the file by other means.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../store/db.ts';

export const AUDIT_SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_log (
  seq            INTEGER PRIMARY KEY,
  at             TEXT NOT NULL,
  action         TEXT NOT NULL,
  outcome        TEXT NOT NULL,
  key_id         TEXT,
  model          TEXT,
  model_version  TEXT,
  weights_sha256 TEXT,
  study_uid      TEXT,
  series_uid     TEXT,
  job_id         TEXT,
  detail         TEXT,
  prev_hash      TEXT NOT NULL,
  hash           TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`;

/** The previous hash of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** What happened: the fields a caller gives. */
export interface AuditEntry {
  /** e.g. job.submit, job.done, job.failed, job.cancel, result.read, key.create, key.revoke. */
  action: string;
  /** e.g. accepted, done, failed, cancelled, refused, read. */
  outcome: string;
  keyId: string | null;
  model?: string | null;
  modelVersion?: string | null;
  weightsSha256?: string | null;
  studyUid?: string | null;
  seriesUid?: string | null;
  jobId?: string | null;
  /** A short note for people (an error message, a key's name); never patient data. */
  detail?: string | null;
}

/** A record as stored: the entry, its place in the chain, its time and hashes. */
export interface AuditRecord extends Required<AuditEntry> {
  seq: number;
  /** ISO 8601 time of the record. */
  at: string;
  prevHash: string;
  hash: string;
}

interface AuditRow {
  seq: number;
  at: string;
  action: string;
  outcome: string;
  key_id: string | null;
  model: string | null;
  model_version: string | null;
  weights_sha256: string | null;
  study_uid: string | null;
  series_uid: string | null;
  job_id: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

export function toRecord(r: AuditRow): AuditRecord {
  return {
    seq: r.seq,
    at: r.at,
    action: r.action,
    outcome: r.outcome,
    keyId: r.key_id,
    model: r.model,
    modelVersion: r.model_version,
    weightsSha256: r.weights_sha256,
    studyUid: r.study_uid,
    seriesUid: r.series_uid,
    jobId: r.job_id,
    detail: r.detail,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** SHA-256 (hex) of a record's content and its predecessor's hash: a JSON array in a fixed order. */
export function recordHash(r: Omit<AuditRecord, 'hash'>): string {
  const fields = [r.seq, r.at, r.action, r.outcome, r.keyId, r.model, r.modelVersion, r.weightsSha256, r.studyUid, r.seriesUid, r.jobId, r.detail, r.prevHash];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

/** Creates the audit table and its append-only triggers when absent. */
export function ensureAuditSchema(db: Db): void {
  db.exec(AUDIT_SCHEMA);
}

export class AuditLog {
  private readonly stmt;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    ensureAuditSchema(db);
    this.stmt = {
      last: db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare(
        `INSERT INTO audit_log (seq, at, action, outcome, key_id, model, model_version, weights_sha256, study_uid, series_uid, job_id, detail, prev_hash, hash)
         VALUES (@seq, @at, @action, @outcome, @keyId, @model, @modelVersion, @weightsSha256, @studyUid, @seriesUid, @jobId, @detail, @prevHash, @hash)`,
      ),
      all: db.prepare('SELECT * FROM audit_log ORDER BY seq'),
    };
  }

  private insert(e: AuditEntry): AuditRecord {
    const last = this.stmt.last.get() as { seq: number; hash: string } | undefined;
    const base = {
      seq: (last?.seq ?? 0) + 1,
      at: new Date(this.now()).toISOString(),
      action: e.action,
      outcome: e.outcome,
      keyId: e.keyId,
      model: e.model ?? null,
      modelVersion: e.modelVersion ?? null,
      weightsSha256: e.weightsSha256 ?? null,
      studyUid: e.studyUid ?? null,
      seriesUid: e.seriesUid ?? null,
      jobId: e.jobId ?? null,
      detail: e.detail ?? null,
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    const rec = { ...base, hash: recordHash(base) };
    this.stmt.insert.run(rec);
    return rec;
  }

  /** Appends one record after the last (under the write lock, so processes sharing the database chain in turn). */
  append(e: AuditEntry): AuditRecord {
    if (this.db.inTransaction) return this.insert(e);
    return this.db.transaction(() => this.insert(e)).immediate();
  }

  /**
   * Runs `change` and appends the record `entryOf` makes of its result in the
   * same transaction: the change and its record are written together or not
   * at all. `entryOf` may return null (nothing to record).
   */
  together<T>(change: () => T, entryOf: (result: T) => AuditEntry | null): T {
    return this.db
      .transaction(() => {
        const r = change();
        const e = entryOf(r);
        if (e) this.insert(e);
        return r;
      })
      .immediate();
  }

  /** Whether the log is in this database (a change there can be recorded in its transaction). */
  sharesDatabase(db: Db): boolean {
    return this.db === db;
  }

  /** Every record, in order. */
  records(): AuditRecord[] {
    return (this.stmt.all.all() as AuditRow[]).map(toRecord);
  }
}
