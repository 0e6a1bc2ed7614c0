/**
 * API keys. A key is `msk_<id>_<secret>`: the id finds the row, the secret is
 * checked against its scrypt hash (salted, slow: a stolen database does not
 * give the keys away). The whole key is shown once, when it is created.
 * Scopes: submit (POST jobs), read (models, jobs, results), admin (keys and
 * every job; admin implies the others).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.ts';

export const SCOPES = ['submit', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

/** scrypt cost: N = 2^14, r = 8 (16 MiB, ~40 ms here); the parameters are fixed in the hash's format version. */
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const HASH_BYTES = 32;
const KEY_PATTERN = /^msk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, HASH_BYTES, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))));
}

interface KeyRow {
  id: string;
  name: string;
  scopes: string;
  salt: Buffer;
  hash: Buffer;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

function toKey(r: KeyRow): ApiKey {
  return {
    id: r.id,
    name: r.name,
    scopes: r.scopes.split(',').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

export type KeyCheck = { ok: true; key: ApiKey } | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'revoked' };

export class KeyStore {
  private readonly now: () => number;
  /**
   * Keys verified in the last minute, by a fast hash of the whole key, held in
   * memory only: a client polling its job pays the slow hash once a minute
   * rather than on every request. Revocation and expiry are still read from
   * the row on every request.
   */
  private readonly verified = new Map<string, number>();
  private static readonly VERIFIED_MS = 60_000;

  constructor(
    private readonly db: Db,
    o: { now?: () => number } = {},
  ) {
    this.now = o.now ?? Date.now;
  }

  /** Creates a key; returns it with its secret, which is not stored and cannot be shown again. */
  async create(o: { name: string; scopes: Scope[]; expiresAt?: number | null }): Promise<{ key: ApiKey; secret: string }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const hash = await hashSecret(secret, salt);
    const scopes = [...new Set(o.scopes)].sort();
    this.db
      .prepare('INSERT INTO api_keys (id, name, scopes, salt, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, o.name, scopes.join(','), salt, hash, this.now(), o.expiresAt ?? null);
    return { key: this.get(id)!, secret: `msk_${id}_${secret}` };
  }

  get(id: string): ApiKey | undefined {
    const r = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined;
    return r && toKey(r);
  }

  list(): ApiKey[] {
    return (this.db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').all() as KeyRow[]).map(toKey);
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM api_keys').get() as { n: number }).n;
  }

  revoke(id: string): boolean {
    return this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.now(), id).changes === 1;
  }

  /** Checks a presented key (constant-time comparison of the scrypt hashes). */
  async verify(presented: string): Promise<KeyCheck> {
    const m = KEY_PATTERN.exec(presented);
    if (!m) return { ok: false, reason: 'malformed' };
    const r = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(m[1]!) as KeyRow | undefined;
    if (!r) return { ok: false, reason: 'unknown' };
    const fast = createHash('sha256').update(presented).digest('hex');
    const until = this.verified.get(fast);
    if (until === undefined || until <= this.now()) {
      this.verified.delete(fast);
      const hash = await hashSecret(m[2]!, r.salt);
      if (hash.length !== r.hash.length || !timingSafeEqual(hash, r.hash)) return { ok: false, reason: 'unknown' };
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(fast, this.now() + KeyStore.VERIFIED_MS);
    }
    if (r.revoked_at !== null) return { ok: false, reason: 'revoked' };
    if (r.expires_at !== null && r.expires_at <= this.now()) return { ok: false, reason: 'expired' };
    return { ok: true, key: toKey(r) };
  }
}

/** Whether a key's scopes allow what a route needs (admin allows everything). */
export function allows(key: ApiKey, needed: Scope): boolean {
  return key.scopes.includes('admin') || key.scopes.includes(needed);
}
