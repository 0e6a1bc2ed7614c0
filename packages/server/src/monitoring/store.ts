/**
 * The monitoring records: one per completed job, with the input's
 * fingerprint and uncertainty (monitoring/input-fingerprint.ts), in a table
 * of its own in the service database. Flags are worked out when asked for,
 * against the model's reference as it is then.
 */
import type { Db } from '../store/db.ts';
import type { InputFingerprint } from './input-fingerprint.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS monitoring_cases (
  job_id        TEXT PRIMARY KEY,
  model         TEXT NOT NULL,
  model_version TEXT NOT NULL,
  key_id        TEXT NOT NULL,
  at            INTEGER NOT NULL,
  fingerprint   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitoring_cases_by_model ON monitoring_cases (model, at);
`;

export interface MonitoredCase {
  jobId: string;
  model: string;
  modelVersion: string;
  keyId: string;
  at: number;
  input: InputFingerprint;
}

export class MonitoringStore {
  private readonly stmt;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    db.exec(SCHEMA);
    this.stmt = {
      put: db.prepare('INSERT OR REPLACE INTO monitoring_cases (job_id, model, model_version, key_id, at, fingerprint) VALUES (?, ?, ?, ?, ?, ?)'),
      recent: db.prepare('SELECT * FROM monitoring_cases WHERE model = ? ORDER BY at DESC, rowid DESC LIMIT ?'),
      recentOfKey: db.prepare('SELECT * FROM monitoring_cases WHERE model = ? AND key_id = ? ORDER BY at DESC, rowid DESC LIMIT ?'),
    };
  }

  record(c: Omit<MonitoredCase, 'at'>): void {
    this.stmt.put.run(c.jobId, c.model, c.modelVersion, c.keyId, this.now(), JSON.stringify(c.input));
  }

  /** The model's most recent cases, newest first (only those of `keyId` when given). */
  recent(model: string, limit: number, keyId?: string): MonitoredCase[] {
    const rows = (keyId === undefined ? this.stmt.recent.all(model, limit) : this.stmt.recentOfKey.all(model, keyId, limit)) as {
      job_id: string;
      model: string;
      model_version: string;
      key_id: string;
      at: number;
      fingerprint: string;
    }[];
    return rows.map((r) => ({
      jobId: r.job_id,
      model: r.model,
      modelVersion: r.model_version,
      keyId: r.key_id,
      at: r.at,
      input: JSON.parse(r.fingerprint) as InputFingerprint,
    }));
  }
}
