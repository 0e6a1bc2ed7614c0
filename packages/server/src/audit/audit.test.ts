/**
 * The audit log: a real service records who submitted which case to which
 * model (version and weights hash), the outcome the worker recorded, who
 * read the result and who changed keys, in one hash chain across the API
 * and worker processes; `medseg-serve audit verify` finds it intact, and
 * after a record is changed, removed or slipped in (by someone editing the
 * database file past its triggers) it names that record.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { repoRoot } from '@medseg/medseg/testing/data';
import { startService, type Service } from '../service.ts';
import { openDatabase } from '../store/db.ts';
import { AuditLog, GENESIS_HASH, recordHash } from './log.ts';
import { verifyAuditChain } from './verify.ts';
import { auditCommand } from './verify-command.ts';
import { JobStore } from '../store/jobs.ts';
import { auth, caseForm, hippocampusCase, tempDir, testConfig, waitFor, writeModels } from '../testing/fixture.ts';

let root: string;
let svc: Service;
let data: string;

/** The command as medseg-serve runs it, in this process (the spawned command is tested once below). */
function verifyCli(dir: string, ...extra: string[]) {
  let out = '';
  let err = '';
  const code = auditCommand(
    ['verify', dir, ...extra],
    (s) => (out += s),
    (s) => (err += s),
  );
  return { code, out, err };
}

/** A copy of the data folder's database to tamper with (the original stays intact for the next test). */
function tamperedCopy(name: string, sql: string): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(data, 'medseg.sqlite'), join(dir, 'medseg.sqlite'));
  const db = new Database(join(dir, 'medseg.sqlite'));
  // Someone with the file in hand: the triggers are no obstacle to them.
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
  db.exec(sql);
  db.close();
  return dir;
}

before(async () => {
  root = tempDir('medseg-audit-');
  data = join(root, 'data');
  const models = writeModels(join(root, 'models'));
  svc = await startService(testConfig(data, models));
  const admin = auth(svc.adminKey!);
  const kr = await fetch(`${svc.url}/keys`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'submitter', scopes: ['submit', 'read'] }),
  });
  const key = (await kr.json()) as { key: { id: string }; secret: string };
  const h = auth(key.secret);
  const r = await fetch(`${svc.url}/jobs`, {
    method: 'POST',
    headers: h,
    body: caseForm({ model: 'hippo' }, { bytes: hippocampusCase(3).bytes, name: 'c.nii.gz' }),
  });
  assert.equal(r.status, 202, await r.clone().text());
  const job = (await r.json()) as { id: string };
  await waitFor('the job to finish', async () => {
    const j = (await (await fetch(`${svc.url}/jobs/${job.id}`, { headers: h })).json()) as { state: string };
    return j.state === 'done' ? j : undefined;
  });
  assert.equal((await fetch(`${svc.url}/jobs/${job.id}/result`, { headers: h })).status, 200);
  // A refused request (unknown model) writes no record.
  const bad = await fetch(`${svc.url}/jobs`, {
    method: 'POST',
    headers: h,
    body: caseForm({ model: 'nope' }, { bytes: hippocampusCase(3).bytes, name: 'c.nii.gz' }),
  });
  assert.equal(bad.status, 400);
  // Refused key checks are recorded: no key, a key outside its scope, a wrong key.
  assert.equal((await fetch(`${svc.url}/models`)).status, 401);
  assert.equal((await fetch(`${svc.url}/keys`, { headers: h })).status, 403);
  assert.equal((await fetch(`${svc.url}/models`, { headers: auth(key.secret.slice(0, -3) + 'xyz') })).status, 401);
  assert.equal((await fetch(`${svc.url}/keys/${key.key.id}`, { method: 'DELETE', headers: admin })).status, 200);
  await svc.close();
});

after(() => rmSync(root, { recursive: true, force: true }));

test('the service records key changes, the submission, the outcome and the result read, chained across its processes', () => {
  const db = openDatabase(join(data, 'medseg.sqlite'));
  try {
    const recs = new AuditLog(db).records();
    assert.deepEqual(
      recs.map((r) => r.action),
      ['key.create', 'key.create', 'job.submit', 'job.done', 'result.read', 'auth.refused', 'auth.refused', 'auth.refused', 'key.revoke'],
    );
    const refused = recs.filter((r) => r.action === 'auth.refused');
    assert.deepEqual(
      refused.map((r) => [r.keyId, r.detail!.replace(/ from .*/, '')]),
      [
        [null, '401 NO_KEY: GET /models'],
        [recs[4]!.keyId, '403 SCOPE: GET /keys'],
        [null, '401 KEY_UNKNOWN: GET /models'],
      ],
    );
    assert.match(refused[0]!.detail!, / from (127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/, 'the address is recorded');
    const submit = recs[2]!;
    const done = recs[3]!;
    const job = new JobStore(db).get(submit.jobId!)!;
    assert.equal(submit.keyId, job.keyId);
    assert.equal(submit.model, 'hippo');
    assert.equal(submit.modelVersion, job.modelVersion);
    assert.equal(submit.weightsSha256!.slice(0, 12), job.modelVersion, 'the weights hash is the full SHA-256 the version abbreviates');
    assert.equal(done.outcome, 'done');
    assert.equal(done.jobId, submit.jobId);
    assert.equal(done.weightsSha256, submit.weightsSha256);
    assert.equal(recs[4]!.keyId, job.keyId, 'the result read is recorded under the key that read it');
    assert.equal(recs[0]!.prevHash, GENESIS_HASH);
    for (let i = 1; i < recs.length; i++) {
      assert.equal(recs[i]!.seq, i + 1);
      assert.equal(recs[i]!.prevHash, recs[i - 1]!.hash);
    }
    assert.ok(Date.parse(done.at) >= Date.parse(submit.at));
    assert.throws(() => db.prepare("UPDATE audit_log SET outcome = 'failed' WHERE seq = 4").run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit_log WHERE seq = 9').run(), /append-only/);
  } finally {
    db.close();
  }
});

test('medseg-serve audit verify finds the chain intact, and checks a head hash kept elsewhere', () => {
  const spawned = spawnSync(process.execPath, ['--import', 'tsx', 'packages/server/src/cli.ts', 'audit', 'verify', data], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(spawned.status, 0, spawned.stderr);
  const r = verifyCli(data);
  assert.equal(r.out, spawned.stdout);
  assert.equal(r.code, 0, r.err + r.out);
  assert.match(r.out, /audit log intact: 9 record\(s\), head 9 [0-9a-f]{64}/);
  const head = /head 9 ([0-9a-f]{64})/.exec(r.out)![1]!;
  assert.equal(verifyCli(data, '--expect-head', head).code, 0);
  const cut = tamperedCopy('cut', 'DELETE FROM audit_log WHERE seq = 9');
  const c = verifyCli(cut, '--expect-head', head, '--json');
  assert.equal(c.code, 3, c.out + c.err);
  assert.match((JSON.parse(c.out) as { broken: { reason: string } }).broken.reason, /cut short or rewritten/);
  assert.equal(verifyCli(cut).code, 0, 'without the head hash a log cut at its end looks whole (the limit of a chain)');
});

test('a changed record is named: its content no longer matches its hash', () => {
  const r = verifyCli(tamperedCopy('changed', "UPDATE audit_log SET outcome = 'failed' WHERE seq = 4"));
  assert.equal(r.code, 3, r.out + r.err);
  assert.match(r.out, /BROKEN at record 4: record 4 does not match its hash/);
});

test('a changed record whose hash is recomputed breaks the next record', () => {
  const db = openDatabase(join(data, 'medseg.sqlite'));
  const rec = new AuditLog(db).records()[2]!;
  db.close();
  const forged = { ...rec, keyId: 'ffffffffffffffff' };
  const { hash: _h, ...content } = forged;
  const r = verifyCli(tamperedCopy('rehashed', `UPDATE audit_log SET key_id = 'ffffffffffffffff', hash = '${recordHash(content)}' WHERE seq = 3`));
  assert.equal(r.code, 3, r.out + r.err);
  assert.match(r.out, /BROKEN at record 4: record 4 names a previous hash that is not record 3's/);
});

test('a removed record is named as missing', () => {
  const r = verifyCli(tamperedCopy('removed', 'DELETE FROM audit_log WHERE seq = 2'));
  assert.equal(r.code, 3, r.out + r.err);
  assert.match(r.out, /BROKEN at record 2: record 2 is missing/);
});

test('an inserted record is named, at the end or in a gap', () => {
  const fake = `'2026-01-01T00:00:00.000Z', 'job.submit', 'accepted', NULL, 'hippo', NULL, NULL, NULL, NULL, NULL, NULL, '${'1'.repeat(64)}', '${'2'.repeat(64)}'`;
  const atEnd = verifyCli(tamperedCopy('appended', `INSERT INTO audit_log VALUES (10, ${fake})`));
  assert.equal(atEnd.code, 3, atEnd.out);
  assert.match(atEnd.out, /BROKEN at record 10: record 10 names a previous hash/);
  const first = verifyCli(tamperedCopy('prepended', `INSERT INTO audit_log VALUES (0, ${fake})`));
  assert.equal(first.code, 3, first.out);
  assert.match(first.out, /BROKEN at record 0: record 0 is out of sequence \(expected 1\): it was inserted/);
});

test('verify refuses bad usage and a folder without a database, and reports an empty log as intact', () => {
  assert.equal(verifyCli(join(root, 'nowhere')).code, 2);
  assert.equal(verifyCli(data, '--expect-head', 'xyz').code, 64);
  const db = openDatabase(':memory:');
  assert.deepEqual(verifyAuditChain(db), { ok: true, records: 0, head: null, broken: null });
  db.close();
});
