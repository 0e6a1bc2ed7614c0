/**
 * TLS: given a key and certificate (a throw-away self-signed pair made by
 * openssl), the service answers HTTPS only, and a client trusting that
 * certificate reaches it with its key; plain HTTP to the same port gets no
 * answer. Without TLS the service refuses to listen beyond loopback, and a
 * half, unreadable or mismatched pair is refused with the setting named.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { selfSigned } from '@medseg/medseg/testing/tls';
import { checkConfig, ConfigError, loadConfig } from './config.ts';
import { startService, type Service } from './service.ts';
import { tempDir, testConfig } from './testing/fixture.ts';

let root: string;
let svc: Service;
let cert: Buffer;

function get(url: string, o: { ca?: Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { ca: o.ca, headers: o.headers, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  root = tempDir('medseg-tls-');
  const pair = selfSigned(root, 'server');
  cert = readFileSync(pair.cert);
  svc = await startService(testConfig(join(root, 'data'), join(root, 'models'), { workers: 0, tlsKey: pair.key, tlsCert: pair.cert }));
});

after(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

test('with a certificate the API is served over HTTPS to a client that trusts it, with keys working as over HTTP', async () => {
  assert.match(svc.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await get(`${svc.url}/health`, { ca: cert })).status, 200);
  const models = await get(`${svc.url}/models`, { ca: cert, headers: { authorization: `Bearer ${svc.adminKey}` } });
  assert.equal(models.status, 200, models.body);
  assert.deepEqual(JSON.parse(models.body), { models: [] });
  assert.equal((await get(`${svc.url}/models`, { ca: cert })).status, 401);
});

test('a client that does not trust the certificate, and plain HTTP to the port, get nothing', async () => {
  await assert.rejects(get(`${svc.url}/health`), /self[- ]signed/i);
  await assert.rejects(get(svc.url.replace('https:', 'http:') + '/health'));
  assert.equal((await get(`${svc.url}/health`, { ca: cert })).status, 200, 'still serving');
});

test('TLS settings: both files or neither, readable PEM of one pair; no plain HTTP beyond loopback', async () => {
  const base = testConfig(join(root, 'cfg'), join(root, 'models'));
  const other = selfSigned(root, 'other');
  const pair = { key: join(root, 'server.key.pem'), cert: join(root, 'server.cert.pem') };
  const bad = (over: Partial<typeof base>, re: RegExp) =>
    assert.throws(
      () => checkConfig({ ...base, ...over }),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      JSON.stringify(over),
    );
  bad({ tlsKey: pair.key }, /both tlsKey and tlsCert/);
  bad({ tlsKey: join(root, 'nope.pem'), tlsCert: pair.cert }, /tlsKey .*nope\.pem does not exist/);
  bad({ host: '0.0.0.0' }, /without TLS would send API keys in clear/);
  bad({ host: '192.168.1.10' }, /without TLS/);
  checkConfig({ ...base, host: '0.0.0.0', tlsKey: pair.key, tlsCert: pair.cert });
  checkConfig({ ...base, host: '0.0.0.0', plainHttpOffLoopback: true });
  checkConfig({ ...base, host: '127.0.0.2' });
  assert.deepEqual(
    [loadConfig({ dataDir: join(root, 'env') }, { MEDSEG_SERVE_TLS_KEY: pair.key, MEDSEG_SERVE_TLS_CERT: pair.cert })].map((c) => [c.tlsKey, c.tlsCert]),
    [[pair.key, pair.cert]],
    'the environment gives the files',
  );
  const garbage = join(root, 'garbage.pem');
  writeFileSync(garbage, 'not a key\n');
  for (const [key, crt, re] of [
    [garbage, pair.cert, /not a PEM key and its certificate/],
    [other.key, pair.cert, /not a PEM key and its certificate/],
  ] as const) {
    await assert.rejects(
      startService({ ...base, dataDir: join(root, `d${Math.random()}`), workers: 0, tlsKey: key, tlsCert: crt }),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );
  }
});
