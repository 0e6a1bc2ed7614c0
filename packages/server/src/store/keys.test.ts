import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from './db.ts';
import { allows, KeyStore } from './keys.ts';
import { tempDir } from '../testing/fixture.ts';

test('keys verify, are stored only as salted scrypt hashes, and expire or are revoked', async () => {
  let clock = 5_000_000;
  const path = join(tempDir(), 'k.sqlite');
  const db = openDatabase(path);
  const keys = new KeyStore(db, { now: () => clock });
  const a = await keys.create({ name: 'reader', scopes: ['read'] });
  const b = await keys.create({ name: 'temp', scopes: ['submit', 'read'], expiresAt: clock + 1000 });
  assert.match(a.secret, /^msk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  const secretPart = a.secret.split('_').slice(2).join('_');
  db.pragma('wal_checkpoint(TRUNCATE)');
  assert.ok(!readFileSync(path).includes(Buffer.from(secretPart)), 'the secret is not in the database file');
  const row = db.prepare('SELECT salt, hash FROM api_keys WHERE id = ?').get(a.key.id) as { salt: Buffer; hash: Buffer };
  assert.equal(row.hash.length, 32);
  assert.equal(row.salt.length, 16);

  const ok = await keys.verify(a.secret);
  assert.ok(ok.ok && ok.key.id === a.key.id && allows(ok.key, 'read') && !allows(ok.key, 'submit'));
  assert.deepEqual(await keys.verify(a.secret.slice(0, -1) + (a.secret.endsWith('A') ? 'B' : 'A')), { ok: false, reason: 'unknown' });
  assert.deepEqual(await keys.verify('msk_0000000000000000_' + 'x'.repeat(43)), { ok: false, reason: 'unknown' });
  assert.deepEqual(await keys.verify('hello'), { ok: false, reason: 'malformed' });
  assert.ok((await keys.verify(b.secret)).ok);
  clock += 1000;
  assert.deepEqual(await keys.verify(b.secret), { ok: false, reason: 'expired' }, 'expiry applies also to a recently verified key');
  assert.equal(keys.revoke(a.key.id), true);
  assert.deepEqual(await keys.verify(a.secret), { ok: false, reason: 'revoked' });
  const admin = await keys.create({ name: 'admin', scopes: ['admin'] });
  const v = await keys.verify(admin.secret);
  assert.ok(v.ok && allows(v.key, 'submit') && allows(v.key, 'read') && allows(v.key, 'admin'));
});
