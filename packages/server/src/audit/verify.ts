/**
 * Checks the audit log's hash chain: records numbered 1, 2, 3 ... without a
 * gap, each one's hash the SHA-256 of its own content, and each one's
 * previous hash the hash of the record before it. The first record that
 * breaks one of these is named with the reason.
 *
 * A chain alone cannot tell a log cut short at its end, or one rewritten
 * whole, from an honest one: compare the head hash it reports with one kept
 * elsewhere (`expectHead`) for that.
 */
import type { Db } from '../store/db.ts';
import { GENESIS_HASH, recordHash, toRecord } from './log.ts';

export interface ChainBreak {
  /** The sequence number of the first record that breaks the chain (for a gap: the first missing number). */
  seq: number;
  reason: string;
}

export interface ChainReport {
  ok: boolean;
  /** Records read. */
  records: number;
  /** The last record's sequence number and hash (of an intact chain). */
  head: { seq: number; hash: string } | null;
  broken: ChainBreak | null;
}

/** Verifies the chain in the database; `expectHead` (a hash kept elsewhere) must be the hash of one of its records. */
export function verifyAuditChain(db: Db, o: { expectHead?: string } = {}): ChainReport {
  const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'").get();
  if (!table) return { ok: true, records: 0, head: null, broken: null };
  let prevHash = GENESIS_HASH;
  let expected = 1;
  let n = 0;
  let head: ChainReport['head'] = null;
  let sawExpected = o.expectHead === undefined;
  const fail = (seq: number, reason: string): ChainReport => ({ ok: false, records: n, head, broken: { seq, reason } });
  for (const row of db.prepare('SELECT * FROM audit_log ORDER BY seq').iterate()) {
    const r = toRecord(row as Parameters<typeof toRecord>[0]);
    n++;
    if (r.seq !== expected) {
      return r.seq > expected
        ? fail(expected, `record ${expected}${r.seq - 1 > expected ? ` to ${r.seq - 1}` : ''} is missing (removed): the next record is ${r.seq}`)
        : fail(r.seq, `record ${r.seq} is out of sequence (expected ${expected}): it was inserted`);
    }
    if (r.prevHash !== prevHash) {
      return fail(r.seq, `record ${r.seq} names a previous hash that is not record ${r.seq - 1}'s: a record before it was changed, removed or inserted`);
    }
    const { hash, ...content } = r;
    if (recordHash(content) !== hash) return fail(r.seq, `record ${r.seq} does not match its hash: it was changed after it was written`);
    prevHash = hash;
    head = { seq: r.seq, hash };
    if (hash === o.expectHead) sawExpected = true;
    expected++;
  }
  if (!sawExpected) {
    return {
      ok: false,
      records: n,
      head,
      broken: { seq: expected, reason: `no record has the expected head hash ${o.expectHead}: the log was cut short or rewritten` },
    };
  }
  return { ok: true, records: n, head, broken: null };
}
