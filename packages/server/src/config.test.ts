import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';
import { tempDir } from './testing/fixture.ts';

test('settings: safe defaults, then the config file, then the environment, then flags', () => {
  const data = tempDir();
  const d = loadConfig({ dataDir: data }, {});
  assert.equal(d.host, '127.0.0.1', 'loopback by default');
  assert.equal(d.modelsDir, join(data, 'models'));
  writeFileSync(join(data, 'config.json'), JSON.stringify({ port: 9000, workers: 3, leaseMs: 4000, heartbeatMs: 1000 }));
  const f = loadConfig({ dataDir: data }, { MEDSEG_SERVE_WORKERS: '2' });
  assert.equal(f.port, 9000);
  assert.equal(f.workers, 2, 'the environment overrides the file');
  assert.equal(f.leaseMs, 4000);
  assert.equal(loadConfig({ dataDir: data, workers: 1 }, { MEDSEG_SERVE_WORKERS: '2' }).workers, 1, 'flags override the environment');
});

test('bad settings are refused with the setting named', () => {
  const data = tempDir();
  const bad = (file: unknown, re: RegExp, env: NodeJS.ProcessEnv = {}) => {
    const dir = join(data, String(Math.random()).slice(2));
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), typeof file === 'string' ? file : JSON.stringify(file));
    assert.throws(
      () => loadConfig({ dataDir: dir }, env),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );
  };
  bad('{ port: ', /cannot read the config file/);
  bad([1, 2], /JSON object/);
  bad({ prot: 80 }, /unknown setting\(s\) .*prot/);
  bad({ port: 70000 }, /port/);
  bad({ leaseMs: 1000, heartbeatMs: 800 }, /heartbeatMs/);
  bad({}, /workers/, { MEDSEG_SERVE_WORKERS: 'many' });
  assert.throws(() => loadConfig({ dataDir: data, config: join(data, 'nope.json') }, {}), /does not exist/);
});
