/**
 * Autorouting against a real Orthanc, search by search (pollOnce, no
 * timers): the first search only records what is there; a new series is
 * taken once two searches count the same instances; rules filter by
 * modality and description; what was seen survives a restart.
 */
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseDicom } from '@medseg/medseg/io/dicom/parse';
import { T } from '@medseg/medseg/io/dicom/dictionary';
import { newUid } from '@medseg/medseg/io/dicom/uid';
import { el, writeDicom } from '@medseg/medseg/io/dicom/write';
import type { AutorouteRule } from '../config.ts';
import { ModelCatalog } from '../models/catalog.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { JobStore } from '../store/jobs.ts';
import { SqliteJobQueue } from '../store/queue.ts';
import { ctSeries, tempDir, writeCtModel } from '../testing/fixture.ts';
import { startOrthanc, type RunningOrthanc } from '../testing/orthanc.ts';
import { AUTOROUTE_KEY, Autorouter } from './autoroute.ts';
import { DicomwebClient } from './client.ts';
import type { DicomwebRef } from './reference.ts';

let root: string;
let orthanc: RunningOrthanc;
let client: DicomwebClient;
let db: Db;
let jobs: JobStore;
let catalog: ModelCatalog;
const ct = ctSeries();

/** The shared CT under new UIDs (a series the PACS has not seen), with a series description. */
function newSeries(description: string): { series: string; files: Uint8Array[] } {
  const study = newUid();
  const series = newUid();
  const files = ct.files.map((bytes) => {
    const ds = parseDicom(bytes).dataset;
    ds.set(el.str(T.StudyInstanceUID, 'UI', study));
    ds.set(el.str(T.SeriesInstanceUID, 'UI', series));
    ds.set(el.str(T.SOPInstanceUID, 'UI', newUid()));
    ds.set(el.str(T.SeriesDescription, 'LO', description));
    return writeDicom(ds);
  });
  return { series, files };
}

const router = (rules: AutorouteRule[]) =>
  new Autorouter({
    rules,
    servers: [{ url: orthanc.dicomweb }],
    timeoutMs: 30_000,
    pollMs: 60_000,
    jobs: new SqliteJobQueue(jobs),
    catalog,
    log: () => undefined,
  });

before(async () => {
  root = tempDir();
  writeCtModel(join(root, 'models'));
  catalog = new ModelCatalog(join(root, 'models'));
  db = openDatabase(join(root, 'db.sqlite'));
  jobs = new JobStore(db);
  orthanc = await startOrthanc();
  client = new DicomwebClient({ url: orthanc.dicomweb });
  await client.store(ct.files);
});

after(async () => {
  db?.close();
  await orthanc?.stop();
  rmSync(root, { recursive: true, force: true });
});

test('first search records, a new series is taken after two equal counts, rules filter, and what was seen survives a restart', async () => {
  const rules: AutorouteRule[] = [
    { model: 'ct', modality: 'CT', seriesDescription: '^abdomen' },
    { model: 'ct', modality: 'MR' },
  ];
  const a = router(rules);
  assert.deepEqual(await a.pollOnce(), [], 'the first search takes nothing: the CT already there is recorded');
  assert.deepEqual(await a.pollOnce(), [], 'and stays recorded');

  const wanted = newSeries('Abdomen 1.25 mm');
  const other = newSeries('Chest');
  await client.store([...wanted.files, ...other.files]);
  assert.deepEqual(await a.pollOnce(), [], 'a series seen once may still be arriving');
  const made = await a.pollOnce();
  assert.equal(made.length, 1, 'the abdomen series only: the chest series fails the description, and no MR exists');
  const job = made[0]!;
  assert.deepEqual([job.model, job.inputFormat, job.keyId, job.state], ['ct', 'dicomweb', AUTOROUTE_KEY, 'queued']);
  const ref = JSON.parse(job.inputRef!) as DicomwebRef;
  assert.deepEqual([ref.url, ref.seriesInstanceUid], [orthanc.dicomweb, wanted.series]);
  assert.deepEqual(await a.pollOnce(), [], 'taken once');

  // A restart (a new router on the same database) neither repeats the series nor takes the archive as new.
  const b = router(rules);
  assert.deepEqual(await b.pollOnce(), []);
  assert.deepEqual(await b.pollOnce(), []);
  assert.equal(jobs.counts().queued, 1);
});
