/**
 * DICOM in, DICOM SEG out, on a real service (loopback, a worker process, an
 * untrained CT model folder) and a real Orthanc: the shared CT series is
 * stored to Orthanc, the service is asked to segment it by its DICOMweb
 * reference, and the DICOM SEG the job stored is read back from Orthanc:
 * it references the CT's instances and reads back to the job's label map,
 * which is the library's own prediction. Bad references fail clearly. The
 * same series uploaded as a zip gives the same label map; hostile zips are
 * refused. With an autorouting rule, a new CT series arriving on Orthanc is
 * segmented once without being submitted. A de-identified job's SEG goes to
 * Orthanc in a pseudonymous study.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { disposeModel, loadModel, predictVolumes } from '@medseg/medseg/infer/predict';
import { readDicomSeries, readDicomSeriesFromBuffers } from '@medseg/medseg/io/dicom/series';
import { el, writeDicom } from '@medseg/medseg/io/dicom/write';
import { newUid } from '@medseg/medseg/io/dicom/uid';
import { parseDicomSeg, segLabelmap } from '@medseg/medseg/io/dicom/seg-read';
import { parseDicom } from '@medseg/medseg/io/dicom/parse';
import { T } from '@medseg/medseg/io/dicom/dictionary';
import type { Volume } from '@medseg/medseg/io/volume';
import { startService, type Service } from '../service.ts';
import { auth, caseForm, ctSeries, tempDir, testConfig, waitFor, writeCtModel } from '../testing/fixture.ts';
import { writeZip } from '../testing/zip.ts';
import { freePort, startOrthanc, type RunningOrthanc } from '../testing/orthanc.ts';
import { DicomwebClient, jsonValue } from './client.ts';

interface JobView {
  id: string;
  state: string;
  error: string | null;
  inputFormat: string;
  dicomweb: { url: string; studyInstanceUid: string; seriesInstanceUid: string; segSeriesInstanceUid: string | null; segSopInstanceUid: string | null } | null;
}

let root: string;
let modelDir: string;
let orthanc: RunningOrthanc;
let svc: Service;
let admin: Record<string, string>;
let client: DicomwebClient;
let source: Volume;
let deadPacs: string;
const ct = ctSeries();

before(async () => {
  root = tempDir();
  modelDir = writeCtModel(join(root, 'models'));
  orthanc = await startOrthanc();
  client = new DicomwebClient({ url: orthanc.dicomweb, timeoutMs: 30_000 });
  source = await readDicomSeries(ct.dir);
  // Stored before the service starts: autorouting's first search finds it already there, and leaves it.
  await client.store(ct.files);
  // A second configured PACS that nothing listens on: a PACS that is down.
  deadPacs = `http://127.0.0.1:${await freePort()}/dicom-web`;
  svc = await startService(
    testConfig(join(root, 'data'), join(root, 'models'), {
      dicomweb: [{ url: orthanc.dicomweb }, { url: deadPacs }],
      maxDecompressedBytes: 20 * 1024 ** 2,
      autoroute: [{ model: 'ct', modality: 'CT' }],
      autoroutePollMs: 300,
    }),
  );
  admin = auth(svc.adminKey!);
});

after(async () => {
  await svc?.close();
  await orthanc?.stop();
  rmSync(root, { recursive: true, force: true });
});

const submit = (body: unknown) =>
  fetch(`${svc.url}/jobs`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });

let predicted: Uint8Array | undefined;
/** The library's own prediction of the CT read from disk (made once). */
function libraryLabels(): Uint8Array {
  if (predicted) return predicted;
  const m = loadModel(modelDir);
  try {
    predicted = predictVolumes(m, [source]).labels.data as Uint8Array;
  } finally {
    disposeModel(m);
  }
  assert.ok(new Set(predicted).size > 1, 'the prediction holds more than one label (the comparisons are not of a uniform map)');
  return predicted;
}

function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

async function finished(id: string): Promise<JobView> {
  return waitFor(`job ${id} to finish`, async () => {
    const j = (await (await fetch(`${svc.url}/jobs/${id}`, { headers: admin })).json()) as JobView;
    return ['done', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  });
}

test('a series on the PACS is segmented by reference; its SEG goes back to the PACS, references the CT slices and reads back to the label map', async () => {
  const study = source.meta.studyInstanceUID!;
  const series = source.meta.seriesInstanceUID!;
  const found = await client.searchSeries(study);
  assert.deepEqual(
    found.map((s) => jsonValue(s, '0020000E')),
    [series],
    'QIDO-RS finds the stored CT',
  );

  const r = await submit({ model: 'ct', dicomweb: { studyInstanceUid: study, seriesInstanceUid: series } });
  const text = await r.text();
  assert.equal(r.status, 202, text);
  const queued = JSON.parse(text) as JobView;
  assert.equal(queued.inputFormat, 'dicomweb');
  assert.deepEqual(queued.dicomweb, {
    url: orthanc.dicomweb,
    studyInstanceUid: study,
    seriesInstanceUid: series,
    segSeriesInstanceUid: null,
    segSopInstanceUid: null,
  });
  const done = await finished(queued.id);
  assert.equal(done.state, 'done', JSON.stringify(done));
  const segSeries = done.dicomweb!.segSeriesInstanceUid!;
  const segSop = done.dicomweb!.segSopInstanceUid!;
  assert.match(segSop, /^2\.25\.\d+$/);

  // QIDO-RS: the study now holds the SEG series beside the CT.
  const withSeg = await client.searchSeries(study);
  assert.deepEqual(
    withSeg.map((s) => [jsonValue(s, '0020000E'), jsonValue(s, '00080060')]).sort(),
    [
      [series, 'CT'],
      [segSeries, 'SEG'],
    ].sort(),
  );
  // WADO-RS: the SEG itself.
  const files = await client.retrieveSeries(study, segSeries);
  assert.equal(files.length, 1);
  const segBytes = files[0]!;
  const ds = parseDicom(segBytes).dataset;
  assert.equal(ds.string(T.SOPInstanceUID), segSop);
  assert.equal(ds.string(T.StudyInstanceUID), study);
  assert.equal(ds.string(T.FrameOfReferenceUID), source.meta.frameOfReferenceUID);
  const refSeries = ds.seq(T.ReferencedSeriesSequence);
  assert.equal(refSeries.length, 1);
  assert.equal(refSeries[0]!.string(T.SeriesInstanceUID), series);
  assert.deepEqual(
    refSeries[0]!
      .seq(T.ReferencedInstanceSequence)
      .map((i) => i.string(T.ReferencedSOPInstanceUID))
      .sort(),
    [...source.meta.sopInstanceUIDs!].sort(),
    'the SEG references every CT instance',
  );
  // dicom3tools' validator finds no error in the SEG as the PACS holds it (warnings on the CT's own attributes may remain).
  const segPath = join(root, 'from-pacs.seg.dcm');
  writeFileSync(segPath, segBytes);
  const v = spawnSync('dciodvfy', [segPath], { encoding: 'utf8' });
  assert.equal(v.error, undefined, 'dciodvfy runs (Debian dicom3tools)');
  const errors = `${v.stdout}${v.stderr}`.split('\n').filter((l) => l.startsWith('Error'));
  assert.deepEqual(errors, []);
  const seg = parseDicomSeg(segBytes);
  const ctSops = new Set(source.meta.sopInstanceUIDs);
  assert.ok(seg.frames.length > 0);
  for (const f of seg.frames) assert.ok(ctSops.has(f.referencedSopInstanceUID!), `frame source image ${f.referencedSopInstanceUID} is a CT instance`);
  const fromPacs = segLabelmap(seg, source).labelmap.data;

  // The job's own result (GET /jobs/:id/result) is the same SEG.
  const res = await fetch(`${svc.url}/jobs/${done.id}/result`, { headers: admin });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/dicom');
  const mine = Buffer.from(await res.arrayBuffer());
  assert.deepEqual(segLabelmap(parseDicomSeg(mine), source).labelmap.data, fromPacs);

  // And that label map is the library's prediction of the CT read from disk.
  const a = agreement(libraryLabels(), fromPacs);
  assert.ok(a > 0.999, `agreement with the library's prediction ${a}`);
});

test('bad references: an unknown series or a PACS that is down fail the job with a clear message; a URL not configured, a bad UID, extra members and no reference are 400s', async () => {
  const study = source.meta.studyInstanceUID!;
  const series = source.meta.seriesInstanceUID!;
  const unknown = (await (await submit({ model: 'ct', dicomweb: { studyInstanceUid: study, seriesInstanceUid: '1.2.3.4.5' } })).json()) as JobView;
  const down = (await (await submit({ model: 'ct', dicomweb: { url: deadPacs, studyInstanceUid: study, seriesInstanceUid: series } })).json()) as JobView;
  const u = await finished(unknown.id);
  assert.equal(u.state, 'failed');
  assert.match(u.error!, /holds no series 1\.2\.3\.4\.5 in study/);
  const d = await finished(down.id);
  assert.equal(d.state, 'failed');
  assert.match(d.error!, /cannot reach the PACS at http:\/\/127\.0\.0\.1:\d+\/dicom-web: ECONNREFUSED \(after 3 tries\)/);

  const counts = JSON.stringify(await svc.jobs.counts());
  const cases: [string, unknown, number, RegExp][] = [
    [
      'a URL not configured',
      { model: 'ct', dicomweb: { url: 'http://169.254.169.254/latest', studyInstanceUid: study, seriesInstanceUid: series } },
      400,
      /PACS_NOT_ALLOWED/,
    ],
    ['a URL that is no URL', { model: 'ct', dicomweb: { url: 'orthanc', studyInstanceUid: study, seriesInstanceUid: series } }, 400, /PACS_NOT_ALLOWED/],
    ['a bad UID', { model: 'ct', dicomweb: { studyInstanceUid: study, seriesInstanceUid: '1.2.x/../..' } }, 400, /BAD_DICOMWEB/],
    ['an extra member', { model: 'ct', dicomweb: { studyInstanceUid: study, seriesInstanceUid: series, host: 'x' } }, 400, /BAD_DICOMWEB/],
    ['no reference', { model: 'ct' }, 400, /NO_DICOMWEB/],
    ['an unknown model', { model: 'liver', dicomweb: { studyInstanceUid: study, seriesInstanceUid: series } }, 400, /UNKNOWN_MODEL/],
    ['a JSON array', [1], 400, /BAD_REQUEST/],
  ];
  for (const [what, body, status, code] of cases) {
    const r = await submit(body);
    const text = await r.text();
    assert.equal(r.status, status, `${what}: ${text}`);
    const b = JSON.parse(text) as { code: string; message: string };
    assert.match(b.code, code, `${what}: ${text}`);
    assert.ok(b.message.length > 10, `${what}: ${b.message}`);
  }
  assert.equal(JSON.stringify(await svc.jobs.counts()), counts, 'no job was made');
});

test('the same series as a DICOM zip upload gives a SEG of the same label map; hostile zips are 4xx and leave nothing behind', async () => {
  const path = join(root, 'ct.zip');
  writeZip(
    path,
    ['01.dcm', '02.dcm', '03.dcm'].map((f) => ({ name: `CT/${f}`, file: join(ct.dir, f) })),
  );
  const post = (bytes: Uint8Array, name: string, fields: Record<string, string> = { model: 'ct' }) =>
    fetch(`${svc.url}/jobs`, { method: 'POST', headers: admin, body: caseForm(fields, { bytes, name }) });
  const r = await post(readFileSync(path), 'ct.zip');
  const text = await r.text();
  assert.equal(r.status, 202, text);
  const queued = JSON.parse(text) as JobView;
  assert.equal(queued.inputFormat, 'dicom-zip');
  assert.equal(queued.dicomweb, null);
  const done = await finished(queued.id);
  assert.equal(done.state, 'done', JSON.stringify(done));
  const res = await fetch(`${svc.url}/jobs/${done.id}/result`, { headers: admin });
  assert.equal(res.headers.get('content-type'), 'application/dicom');
  const seg = parseDicomSeg(Buffer.from(await res.arrayBuffer()));
  assert.equal(seg.referencedSeriesInstanceUID, source.meta.seriesInstanceUID);
  const a = agreement(libraryLabels(), segLabelmap(seg, source).labelmap.data);
  assert.ok(a > 0.999, `agreement with the library's prediction ${a}`);

  const uploads = () => readdirSync(join(root, 'data', 'uploads')).sort();
  const before = uploads();
  const counts = JSON.stringify(await svc.jobs.counts());
  const slip = join(root, 'slip.zip');
  writeZip(slip, [
    { name: 'CT/01.dcm', file: join(ct.dir, '01.dcm') },
    { name: '../../../etc/cron.d/x', bytes: Buffer.from('* * * * * root true') },
  ]);
  const bomb = join(root, 'bomb.zip');
  writeZip(bomb, [{ name: 'zeros.dcm', zeros: 64 * 1024 ** 2 }]);
  const cases: [string, Response, number, RegExp][] = [
    ['a zip slip', await post(readFileSync(slip), 'slip.zip'), 400, /ZIP_SLIP/],
    ['a zip bomb', await post(readFileSync(bomb), 'bomb.zip'), 413, /ZIP_TOO_LARGE/],
    ['a series that is not in the zip', await post(readFileSync(path), 'ct.zip', { model: 'ct', series: '1.2.3' }), 400, /INVALID_NOT_FOUND/],
    ['a series field that is no UID', await post(readFileSync(path), 'ct.zip', { model: 'ct', series: '../x' }), 400, /BAD_FIELD/],
  ];
  for (const [what, res, status, code] of cases) {
    const body = await res.text();
    assert.equal(res.status, status, `${what}: ${body}`);
    assert.match((JSON.parse(body) as { code: string }).code, code, `${what}: ${body}`);
  }
  assert.deepEqual(uploads(), before, 'nothing written');
  assert.equal(JSON.stringify(await svc.jobs.counts()), counts, 'no job made');
  assert.equal((await fetch(`${svc.url}/health`)).status, 200, 'still serving');
});

test('autorouting: a new CT series arriving on the PACS is segmented once, unasked; the series there before and the SEG results are left alone', async () => {
  const total = async () => Object.values(await svc.jobs.counts()).reduce((a, b) => a + b, 0);
  const before = await svc.jobs.counts();
  const jobsBefore = await total();
  // The shared slices under new study, series and instance UIDs: a CT that was not on the PACS.
  const study = newUid();
  const series = newUid();
  const files = ct.files.map((bytes) => {
    const ds = parseDicom(bytes).dataset;
    ds.set(el.str(T.StudyInstanceUID, 'UI', study));
    ds.set(el.str(T.SeriesInstanceUID, 'UI', series));
    ds.set(el.str(T.SOPInstanceUID, 'UI', newUid()));
    return writeDicom(ds);
  });
  await client.store(files);
  const segSeries = await waitFor(
    'the SEG of the new series on the PACS',
    async () => {
      const seg = (await client.searchSeries(study)).find((x) => jsonValue(x, '00080060') === 'SEG');
      return seg ? String(jsonValue(seg, '0020000E')) : undefined;
    },
    60_000,
    250,
  );
  const [segBytes] = await client.retrieveSeries(study, segSeries);
  const seg = parseDicomSeg(segBytes!);
  assert.equal(seg.referencedSeriesInstanceUID, series);
  const arrived = await readDicomSeriesFromBuffers(files.map((bytes, i) => ({ name: `new ${i}`, bytes })));
  const a = agreement(libraryLabels(), segLabelmap(seg, arrived).labelmap.data);
  assert.ok(a > 0.999, `agreement with the library's prediction ${a}`);
  // More searches pass: still one job, done, and none for the CT that was there before or for the SEGs.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await total()) - jobsBefore, 1);
  assert.equal((await svc.jobs.counts()).done - before.done, 1);
  assert.equal((await client.searchSeries(source.meta.studyInstanceUID!)).filter((x) => jsonValue(x, '00080060') === 'SEG').length, 1, 'the first SEG only');
});

test('a de-identified job stores its SEG on the PACS in a pseudonymous study: a pseudonym for the patient, the name ANONYMOUS, no source UID, the same label map', async () => {
  const study = source.meta.studyInstanceUID!;
  const series = source.meta.seriesInstanceUID!;
  const r = await submit({ model: 'ct', dicomweb: { studyInstanceUid: study, seriesInstanceUid: series }, deidentify: true });
  assert.equal(r.status, 202, await r.clone().text());
  const done = await finished(((await r.json()) as JobView).id);
  assert.equal(done.state, 'done', JSON.stringify(done));
  const mine = new Uint8Array(await (await fetch(`${svc.url}/jobs/${done.id}/result`, { headers: admin })).arrayBuffer());
  const pseudoStudy = parseDicom(mine).dataset.string(T.StudyInstanceUID)!;
  assert.notEqual(pseudoStudy, study);
  // Orthanc accepted it (STOW-RS) under the pseudonymous study, not beside the source CT.
  assert.ok(!(await client.searchSeries(study)).some((s) => jsonValue(s, '0020000E') === done.dicomweb!.segSeriesInstanceUid));
  const stored = await client.retrieveSeries(pseudoStudy, done.dicomweb!.segSeriesInstanceUid!);
  assert.equal(stored.length, 1);
  const ds = parseDicom(stored[0]!).dataset;
  assert.equal(ds.string(T.SOPInstanceUID), done.dicomweb!.segSopInstanceUid);
  assert.notEqual(ds.string(T.PatientID), source.meta.patientId);
  assert.match(ds.string(T.PatientID) ?? '', /\S/, 'a pseudonym, not an empty ID');
  assert.equal(ds.string(T.PatientName), 'ANONYMOUS', 'the name replaced (basic profile Z)');
  const sourceUids = new Set([study, series, ...source.meta.sopInstanceUIDs!, source.meta.frameOfReferenceUID]);
  const refs = ds.seq(T.ReferencedSeriesSequence);
  for (const u of [
    ds.string(T.StudyInstanceUID),
    ds.string(T.FrameOfReferenceUID),
    ...refs.map((s) => s.string(T.SeriesInstanceUID)),
    ...refs.flatMap((s) => s.seq(T.ReferencedInstanceSequence).map((i) => i.string(T.ReferencedSOPInstanceUID))),
  ]) {
    assert.ok(u && !sourceUids.has(u), `UID ${u} is remapped`);
  }
  const path = join(root, 'deid-from-pacs.seg.dcm');
  writeFileSync(path, stored[0]!);
  const v = spawnSync('dciodvfy', [path], { encoding: 'utf8' });
  assert.deepEqual(
    `${v.stdout}${v.stderr}`.split('\n').filter((l) => l.startsWith('Error')),
    [],
  );
  // Frames placed by their positions (the references are pseudonymous): the library's prediction.
  const a = agreement(libraryLabels(), segLabelmap(parseDicomSeg(stored[0]!), source).labelmap.data);
  assert.ok(a > 0.999, `agreement with the library's prediction ${a}`);
});
