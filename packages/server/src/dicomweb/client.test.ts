/**
 * The DICOMweb client against a real Orthanc with its DICOMweb plugin
 * (started on loopback with a throw-away configuration): STOW-RS of the
 * shared CT series, QIDO-RS of what was stored, WADO-RS of the same files
 * back; and each kind of failure as its own error class.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { readDicomSeries, readDicomSeriesFromBuffers } from '@medseg/medseg/io/dicom/series';
import { parseDicom } from '@medseg/medseg/io/dicom/parse';
import { T } from '@medseg/medseg/io/dicom/dictionary';
import type { Volume } from '@medseg/medseg/io/volume';
import { ctSeries } from '../testing/fixture.ts';
import { freePort, startOrthanc, type RunningOrthanc } from '../testing/orthanc.ts';
import { DicomwebClient, jsonValue } from './client.ts';
import { PacsError, PacsMalformedError, PacsStatusError, PacsStoreError, PacsTooLargeError, PacsUnreachableError } from './errors.ts';
import { boundaryOf, parseMediaType, parseMultipart } from './multipart.ts';

let orthanc: RunningOrthanc;
let client: DicomwebClient;
let source: Volume;
let study: string;
let series: string;
let sops: string[];
const ct = ctSeries();

before(async () => {
  orthanc = await startOrthanc();
  client = new DicomwebClient({ url: `${orthanc.dicomweb}/`, timeoutMs: 30_000 });
  source = await readDicomSeries(ct.dir);
  study = source.meta.studyInstanceUID!;
  series = source.meta.seriesInstanceUID!;
  sops = [...source.meta.sopInstanceUIDs!].sort();
});

after(async () => {
  await orthanc?.stop();
});

test('STOW-RS stores the CT series; QIDO-RS finds its study, series and instances; WADO-RS gives the stored files back', async () => {
  const stored = await client.store(ct.files);
  assert.deepEqual(stored.map((s) => s.sopInstanceUid).sort(), sops);
  // Orthanc's own REST API as the witness of what it holds.
  const stats = (await (await fetch(`${orthanc.url}/statistics`)).json()) as { CountInstances: number; CountSeries: number };
  assert.deepEqual([stats.CountInstances, stats.CountSeries], [3, 1]);

  const studies = await client.searchStudies({ StudyInstanceUID: study });
  assert.deepEqual(
    studies.map((s) => jsonValue(s, '0020000D')),
    [study],
  );
  assert.deepEqual(await client.searchStudies({ StudyInstanceUID: '1.2.3.4' }), [], 'a search that matches nothing is an empty list');
  const found = await client.searchSeries(study);
  assert.deepEqual(
    found.map((s) => [jsonValue(s, '0020000E'), jsonValue(s, '00080060')]),
    [[series, 'CT']],
  );
  const everywhere = await client.searchAllSeries({ Modality: 'CT', includefield: '0020000D,0008103E,00201209' });
  assert.deepEqual(
    everywhere.map((s) => [jsonValue(s, '0020000D'), jsonValue(s, '0020000E'), Number(jsonValue(s, '00201209'))]),
    [[study, series, 3]],
  );
  assert.deepEqual(await client.searchAllSeries({ Modality: 'MR' }), []);
  const instances = await client.searchInstances(study, series);
  assert.deepEqual(instances.map((i) => jsonValue(i, '00080018')).sort(), sops);

  const files = await client.retrieveSeries(study, series);
  assert.equal(files.length, 3);
  // transfer-syntax=*: the files as they were stored, byte for byte (in whatever order the PACS sends them).
  const key = (b: Uint8Array) => Buffer.from(b).toString('base64');
  assert.deepEqual(files.map(key).sort(), ct.files.map(key).sort());
  const back = await readDicomSeriesFromBuffers(files.map((bytes, i) => ({ name: `part ${i}`, bytes })));
  assert.deepEqual(
    [back.size, back.spacing, back.origin, back.meta.sopInstanceUIDs],
    [source.size, source.spacing, source.origin, source.meta.sopInstanceUIDs],
  );
  assert.deepEqual(back.data, source.data);
  const one = await client.retrieveInstance(study, series, sops[1]!);
  assert.equal(parseDicom(one).dataset.string(T.SOPInstanceUID), sops[1]);
});

test('a WADO-RS answer cut short is malformed, not a shorter series', async () => {
  const r = await fetch(`${orthanc.dicomweb}/studies/${study}/series/${series}`, { headers: { accept: 'multipart/related; type="application/dicom"' } });
  assert.equal(r.status, 200);
  const boundary = boundaryOf(parseMediaType(r.headers.get('content-type')!));
  const body = Buffer.from(await r.arrayBuffer());
  assert.equal(parseMultipart(body, boundary).length, 3);
  assert.throws(
    () => parseMultipart(body.subarray(0, body.length - 1000), boundary),
    (e: unknown) => e instanceof PacsMalformedError && /not closed by a boundary/.test(e.message),
  );
});

test('failures are typed: 404, refused store, unreachable, silent server, over the byte limit, a UID that is no UID', async () => {
  await assert.rejects(client.retrieveSeries('1.2.3', '4.5.6'), (e: unknown) => e instanceof PacsStatusError && e.status === 404 && !e.transient);
  await assert.rejects(
    client.store([Buffer.from('this is not a DICOM file')]),
    (e: unknown) => e instanceof PacsStoreError || (e instanceof PacsStatusError && e.status >= 400 && e.status < 500),
  );

  const closed = await freePort();
  await assert.rejects(
    new DicomwebClient({ url: `http://127.0.0.1:${closed}/dicom-web` }).searchStudies(),
    (e: unknown) =>
      e instanceof PacsUnreachableError && e.transient && /cannot reach the PACS at http:\/\/127\.0\.0\.1:\d+\/dicom-web: ECONNREFUSED/.test(e.message),
  );

  // A server that takes the connection and never answers.
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const port = (silent.address() as { port: number }).port;
    await assert.rejects(
      new DicomwebClient({ url: `http://127.0.0.1:${port}/dicom-web`, timeoutMs: 300 }).searchStudies(),
      (e: unknown) => e instanceof PacsUnreachableError && /did not answer within 300 ms/.test(e.message),
    );
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }

  const small = new DicomwebClient({ url: orthanc.dicomweb, maxBytes: 100_000 });
  await assert.rejects(small.retrieveSeries(study, series), (e: unknown) => e instanceof PacsTooLargeError && /over the 100000-byte limit/.test(e.message));
  assert.equal((await small.searchSeries(study)).length, 1, 'small answers pass the same limit');

  await assert.rejects(client.searchSeries('1.2/../../tools'), (e: unknown) => e instanceof PacsError && /not a DICOM UID/.test(e.message));
});
