/**
 * `medseg-serve audit verify <data-folder>`: checks the audit log's hash
 * chain in the data folder's database, read-only (a running server may keep
 * writing). Prints the number of records and the head hash, or the first
 * broken record and why. Exit codes: 0 intact, 3 broken, 2 no database
 * there, 64 usage.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { verifyAuditChain } from './verify.ts';

export const AUDIT_USAGE = `usage: medseg-serve audit verify <data-folder> [--expect-head HASH] [--json]

  Checks the audit log's hash chain: every record present, unchanged, in order.
  --expect-head HASH  a head hash noted earlier (kept outside the server): it must be in the chain
  --json              print the report as one JSON line
Exit codes: 0 intact, 3 broken (the first broken record is named), 2 no database, 64 usage.`;

export function auditCommand(argv: string[], out: (s: string) => void, err: (s: string) => void): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { 'expect-head': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    err(`${(e as Error).message}\n${AUDIT_USAGE}\n`);
    return 64;
  }
  const [sub, dataDir, ...extra] = parsed.positionals;
  if (parsed.values.help) {
    out(`${AUDIT_USAGE}\n`);
    return 0;
  }
  if (sub !== 'verify' || !dataDir || extra.length) {
    err(`${AUDIT_USAGE}\n`);
    return 64;
  }
  const expectHead = parsed.values['expect-head'];
  if (expectHead !== undefined && !/^[0-9a-f]{64}$/.test(expectHead)) {
    err('medseg-serve audit: --expect-head takes a SHA-256 in hex (64 digits)\n');
    return 64;
  }
  const path = join(dataDir, 'medseg.sqlite');
  if (!existsSync(path)) {
    err(`medseg-serve audit: no service database in ${dataDir} (expected medseg.sqlite)\n`);
    return 2;
  }
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const r = verifyAuditChain(db, { expectHead });
    if (parsed.values.json) out(`${JSON.stringify(r)}\n`);
    else if (r.ok) out(`audit log intact: ${r.records} record(s)${r.head ? `, head ${r.head.seq} ${r.head.hash}` : ''}\n`);
    else out(`audit log BROKEN at record ${r.broken!.seq}: ${r.broken!.reason}\n`);
    return r.ok ? 0 : 3;
  } finally {
    db.close();
  }
}
