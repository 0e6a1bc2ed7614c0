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
  assert.deepEqual(d.dicomweb, [], 'no PACS unless configured');
  assert.deepEqual(loadConfig({ dataDir: data }, { MEDSEG_SERVE_DICOMWEB_URL: 'http://127.0.0.1:8042/dicom-web' }).dicomweb, [
    { url: 'http://127.0.0.1:8042/dicom-web' },
  ]);
  assert.equal(d.databaseUrl, undefined, 'the queue is in the data folder unless a PostgreSQL URL is given');
  assert.equal(loadConfig({ dataDir: data }, { MEDSEG_DATABASE_URL: 'postgres://medseg@db:5432/medseg' }).databaseUrl, 'postgres://medseg@db:5432/medseg');
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
  bad({ databaseUrl: 'mysql://db/medseg' }, /databaseUrl must be a postgres:\/\/ URL/);
  bad({ dicomweb: 'http://pacs/dicom-web' }, /dicomweb must be a list/);
  bad({ dicomweb: [{ url: 'file:///etc/passwd' }] }, /must be http or https/);
  bad({ dicomweb: [{ url: 'http://user:secret@pacs/dicom-web' }] }, /credentials in "headers"/);
  bad({ dicomweb: [{ url: 'http://pacs/dicom-web?x=1' }] }, /no query/);
  bad({ dicomweb: [{ url: 'http://pacs/dicom-web' }, { url: 'http://pacs/dicom-web/' }] }, /listed twice/);
  bad({ dicomweb: [{ url: 'http://pacs/dicom-web', token: 'x' }] }, /unknown dicomweb setting/);
  bad({ autoroute: [{ model: 'ct' }] }, /need a PACS/);
  bad({ dicomweb: [{ url: 'http://pacs/dicom-web' }], autoroute: [{ model: 'ct', url: 'http://other/dicom-web' }] }, /not one of the dicomweb URLs/);
  bad({ dicomweb: [{ url: 'http://pacs/dicom-web' }], autoroute: [{ model: 'ct', seriesDescription: '(' }] }, /not a regular expression/);
  bad({ dicomweb: [{ url: 'http://pacs/dicom-web' }], autoroute: [{ modality: 'CT' }] }, /needs a "model"/);
  assert.throws(() => loadConfig({ dataDir: data, config: join(data, 'nope.json') }, {}), /does not exist/);
});
