/**
 * The service's SQLite database: jobs, their event log, API keys and the
 * series autorouting has seen, in one file under the data folder. WAL mode lets the HTTP process read while the
 * worker processes (each with its own connection) claim and complete jobs;
 * writers wait for each other through the busy timeout instead of failing.
 */
import Database from 'better-sqlite3';

export type Db = Database.Database;

const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id            TEXT PRIMARY KEY,
  model         TEXT NOT NULL,
  model_version TEXT NOT NULL,
  input_path    TEXT NOT NULL,
  input_format  TEXT NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  progress      REAL NOT NULL DEFAULT 0,
  attempt       INTEGER NOT NULL DEFAULT 0,
  lease_owner   TEXT,
  lease_until   INTEGER,
  result_path   TEXT,
  error         TEXT,
  key_id        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  started_at    INTEGER,
  finished_at   INTEGER,
  input_ref     TEXT,
  output        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at);
CREATE TABLE IF NOT EXISTS job_events (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id  TEXT NOT NULL,
  at      INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  owner   TEXT,
  detail  TEXT
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, kind);
CREATE TABLE IF NOT EXISTS autoroute_seen (
  rule       TEXT NOT NULL,
  series_uid TEXT NOT NULL,
  seen_at    INTEGER NOT NULL,
  job_id     TEXT,
  PRIMARY KEY (rule, series_uid)
);
CREATE TABLE IF NOT EXISTS api_keys (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  scopes     TEXT NOT NULL,
  salt       BLOB NOT NULL,
  hash       BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER
);
`;

/** Opens (creating when absent) the database at path, in WAL mode, with the schema in place. */
export function openDatabase(path: string, o: { busyTimeoutMs?: number } = {}): Db {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a process kill (the WAL is written
    // before the commit returns); only a power loss may drop the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(o.busyTimeoutMs ?? 10_000))}`);
    db.pragma('foreign_keys = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`the database ${path} was written by a newer medseg server (schema ${version}, this one knows ${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA);
    // Schema 2 adds the input reference (a DICOMweb series) and the output facts (the stored SEG's UIDs) as JSON.
    if (version === 1) db.exec('ALTER TABLE jobs ADD COLUMN input_ref TEXT; ALTER TABLE jobs ADD COLUMN output TEXT;');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}
