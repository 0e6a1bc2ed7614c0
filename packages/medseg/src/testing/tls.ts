/** Test helper: a throw-away self-signed TLS key and certificate for 127.0.0.1, made by openssl. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Writes <name>.key.pem and <name>.cert.pem (EC P-256, one day, SAN IP:127.0.0.1) into dir. */
export function selfSigned(dir: string, name: string): { key: string; cert: string } {
  const key = join(dir, `${name}.key.pem`);
  const crt = join(dir, `${name}.cert.pem`);
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      crt,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return { key, cert: crt };
}
