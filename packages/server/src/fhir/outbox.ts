/**
 * The FHIR outbox: each done job's result Bundle, stored once (in the same
 * transaction as the job's outcome on the SQLite queue), served by
 * GET /jobs/:id/fhir, and sent to the configured FHIR server by the sender
 * (fhir/sender.ts) until the server takes it or the attempts run out. The
 * Bundle is stored as sent, resource ids and all, so every attempt sends the
 * same transaction and its conditional creates (ifNoneExist on the job's
 * identifiers) make a repeat after an unanswered attempt harmless.
 */
import type { Db } from '../store/db.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fhir_outbox (
  job_id          TEXT PRIMARY KEY,
  bundle          TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  sent_at         INTEGER,
  last_error      TEXT
);
CREATE INDEX IF NOT EXISTS fhir_outbox_due ON fhir_outbox (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
`;

/** Where a job's Bundle stands: held only (no FHIR server), waiting to be sent, sent, or given up on. */
export type FhirDelivery = 'held' | 'pending' | 'sent' | 'abandoned';

export interface OutboxEntry {
  jobId: string;
  bundle: object;
  createdAt: number;
  attempts: number;
  nextAttemptAt: number | null;
  sentAt: number | null;
  lastError: string | null;
}

interface Row {
  job_id: string;
  bundle: string;
  created_at: number;
  attempts: number;
  next_attempt_at: number | null;
  sent_at: number | null;
  last_error: string | null;
}

const entry = (r: Row): OutboxEntry => ({
  jobId: r.job_id,
  bundle: JSON.parse(r.bundle) as object,
  createdAt: r.created_at,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  sentAt: r.sent_at,
  lastError: r.last_error,
});

export class FhirOutbox {
  private readonly stmt;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    db.exec(SCHEMA);
    this.stmt = {
      put: db.prepare('INSERT OR IGNORE INTO fhir_outbox (job_id, bundle, created_at, next_attempt_at) VALUES (?, ?, ?, ?)'),
      get: db.prepare('SELECT * FROM fhir_outbox WHERE job_id = ?'),
      due: db.prepare('SELECT * FROM fhir_outbox WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?'),
      claim: db.prepare(
        'UPDATE fhir_outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE job_id = ? AND next_attempt_at IS NOT NULL AND next_attempt_at <= ?',
      ),
      sent: db.prepare('UPDATE fhir_outbox SET sent_at = ?, next_attempt_at = NULL, last_error = NULL WHERE job_id = ?'),
      failed: db.prepare('UPDATE fhir_outbox SET next_attempt_at = ?, last_error = ? WHERE job_id = ?'),
    };
  }

  /**
   * Stores a job's Bundle (once: a second put for the job changes nothing);
   * `send` queues it for the FHIR server at once, otherwise it is only held
   * (for GET /jobs/:id/fhir; configuring a FHIR server later does not send
   * the Bundles made before).
   */
  put(jobId: string, bundle: object, send: boolean): void {
    const t = this.now();
    this.stmt.put.run(jobId, JSON.stringify(bundle), t, send ? t : null);
  }

  get(jobId: string): (OutboxEntry & { delivery: FhirDelivery }) | undefined {
    const r = this.stmt.get.get(jobId) as Row | undefined;
    return r ? { ...entry(r), delivery: deliveryOf(r) } : undefined;
  }

  /** The Bundles whose next attempt is due, oldest first. */
  due(limit: number): OutboxEntry[] {
    return (this.stmt.due.all(this.now(), limit) as Row[]).map(entry);
  }

  /**
   * Takes a due entry for one attempt: counts the attempt and moves its next
   * attempt `holdMs` ahead, so a sender that dies mid-attempt leaves it to be
   * tried again then. False when it is not due (sent or taken meanwhile).
   */
  claim(jobId: string, holdMs: number): boolean {
    const t = this.now();
    return this.stmt.claim.run(t + holdMs, jobId, t).changes === 1;
  }

  markSent(jobId: string): void {
    this.stmt.sent.run(this.now(), jobId);
  }

  /** Records a failed attempt: tried again at `retryAt`, or never (null: given up). */
  markFailed(jobId: string, error: string, retryAt: number | null): void {
    this.stmt.failed.run(retryAt, error, jobId);
  }
}

function deliveryOf(r: Row): FhirDelivery {
  if (r.sent_at !== null) return 'sent';
  if (r.next_attempt_at !== null) return 'pending';
  return r.attempts > 0 ? 'abandoned' : 'held';
}
