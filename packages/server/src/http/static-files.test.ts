/**
 * The viewer's static files: paths resolve only inside the served folder, and
 * the service's /viewer/ route sends them with cross-origin isolation and
 * without a key, while the API beside it still asks for one.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../store/db.ts';
import { JobStore } from '../store/jobs.ts';
import { SqliteJobQueue } from '../store/queue.ts';
import { KeyStore } from '../store/keys.ts';
import { ModelCatalog } from '../models/catalog.ts';
import { tempDir } from '../testing/fixture.ts';
import { buildApp } from './app.ts';
import { resolveStaticFile } from './static-files.ts';

function site(): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'www', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'www', 'index.html'), '<!doctype html><title>viewer</title>');
  writeFileSync(join(dir, 'www', 'assets', 'app.js'), 'export {};');
  writeFileSync(join(dir, 'www', 'assets', 'ort.wasm'), new Uint8Array([0, 97, 115, 109]));
  writeFileSync(join(dir, 'www', '.built'), 'stamp');
  writeFileSync(join(dir, 'secret.txt'), 'outside');
  return dir;
}

test('resolveStaticFile: index.html for the folder, types by extension, nothing outside the folder or hidden', () => {
  const dir = site();
  try {
    const www = join(dir, 'www');
    assert.equal(resolveStaticFile(www, '')?.path, join(www, 'index.html'));
    assert.equal(resolveStaticFile(www, '/')?.type, 'text/html; charset=utf-8');
    assert.equal(resolveStaticFile(www, 'assets/app.js')?.type, 'text/javascript; charset=utf-8');
    assert.equal(resolveStaticFile(www, 'assets/ort.wasm')?.type, 'application/wasm');
    assert.equal(resolveStaticFile(www, 'assets/ort.wasm')?.bytes, 4);
    for (const bad of [
      '../secret.txt',
      'assets/../../secret.txt',
      '%2e%2e/secret.txt',
      '.built',
      'assets/missing.js',
      'a%00b',
      '%E0%A4%A',
      'assets'.padEnd(7, '/') + '..',
    ])
      assert.equal(resolveStaticFile(www, bad), null, bad);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GET /viewer/ serves the build without a key, with cross-origin isolation; /viewer redirects; the API still needs a key', async () => {
  const dir = site();
  const db = openDatabase(join(dir, 'db.sqlite'));
  const app = await buildApp({
    jobs: new SqliteJobQueue(new JobStore(db)),
    keys: new KeyStore(db),
    catalog: new ModelCatalog(join(dir, 'models')),
    filesDir: dir,
    maxUploadBytes: 1024,
    maxVoxelBytes: 1024,
    maxDecompressedBytes: 1024,
    rateLimit: { max: 100, windowMs: 60_000 },
    viewerDir: join(dir, 'www'),
  });
  try {
    const page = await app.inject({ method: 'GET', url: '/viewer/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<title>viewer<\/title>/);
    assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
    const wasm = await app.inject({ method: 'GET', url: '/viewer/assets/ort.wasm' });
    assert.equal(wasm.headers['content-type'], 'application/wasm');
    assert.deepEqual([...wasm.rawPayload], [0, 97, 115, 109]);
    const redirect = await app.inject({ method: 'GET', url: '/viewer' });
    assert.equal(redirect.statusCode, 302);
    assert.equal(redirect.headers.location, '/viewer/');
    for (const url of ['/viewer/../secret.txt', '/viewer/%2e%2e/secret.txt', '/viewer/.built', '/viewer/nope.js']) {
      const r = await app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 404, url);
      assert.doesNotMatch(r.body, /outside/);
    }
    assert.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 401);
  } finally {
    await app.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
