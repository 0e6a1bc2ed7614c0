/**
 * De-identified DICOM results on a real service: the shared CT series as a
 * zip, segmented by an untrained CT model. Asked for per request, or set for
 * the model, the SEG handed out carries no patient name, ID or original UID;
 * its study, frame of reference and referenced instances carry the UIDs the
 * library's de-identification gives the source series under the service's
 * secret (so it still points at the de-identified source), and the patient a
 * pseudonym derived from the same secret. Without either, the SEG is as it
 * was. A bad "deidentify" field is refused with nothing written.
 */
import { strict as assert } from 'node:assert';
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { deidentify } from '@medseg/medseg/io/dicom/deidentify';
import { parseDicom } from '@medseg/medseg/io/dicom/parse';
import type { DicomDataset } from '@medseg/medseg/io/dicom/dataset';
import { T } from '@medseg/medseg/io/dicom/dictionary';
import { startService, type Service } from '../service.ts';
import { auth, caseForm, ctSeries, submitAndWait, tempDir, testConfig, writeCtModel, writeCtZip } from '../testing/fixture.ts';
import { patientPseudonym } from './outgoing.ts';
import { readDeidSecret } from './secret.ts';

let root: string;
let svc: Service;
let admin: Record<string, string>;
let zip: Buffer;
const ct = ctSeries();
const source = ct.files.map((b) => parseDicom(b).dataset);

/** Every value of a tag anywhere in the dataset, sequences included. */
function allValues(ds: DicomDataset, tag: number, out: string[] = []): string[] {
  for (const [t, e] of ds.elements) {
    if (t === tag) out.push(...ds.strings(t));
    for (const item of e.items ?? []) allValues(item, tag, out);
  }
  return out;
}

async function segOf(model: string, fields: Record<string, string> = {}): Promise<{ bytes: Buffer; ds: DicomDataset }> {
  const id = await submitAndWait(svc.url, admin, caseForm({ model, ...fields }, { bytes: zip, name: 'ct.zip' }));
  const bytes = Buffer.from(await (await fetch(`${svc.url}/jobs/${id}/result`, { headers: admin })).arrayBuffer());
  return { bytes, ds: parseDicom(bytes).dataset };
}

const segs: Record<string, { bytes: Buffer; ds: DicomDataset }> = {};

before(async () => {
  root = tempDir('medseg-deid-');
  const models = join(root, 'models');
  writeCtModel(models);
  cpSync(join(models, 'ct'), join(models, 'ct-deid'), { recursive: true });
  zip = writeCtZip(join(root, 'ct.zip'));
  svc = await startService(testConfig(join(root, 'data'), models, { deidentifyModels: ['ct-deid'] }));
  admin = auth(svc.adminKey!);
  segs.plain = await segOf('ct');
  segs.asked = await segOf('ct', { deidentify: 'true' });
  segs.model = await segOf('ct-deid', { deidentify: 'false' });
});

after(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

test('the secret file is made once, readable by its owner only', () => {
  const st = statSync(join(root, 'data', 'deid-secret'));
  assert.equal(st.mode & 0o777, 0o600);
  assert.match(readDeidSecret(join(root, 'data')), /^[0-9a-f]{64}$/);
});

test('without de-identification the SEG keeps the patient and references the source as it is', () => {
  const ds = segs.plain!.ds;
  assert.equal(ds.string(T.PatientID), source[0]!.string(T.PatientID));
  assert.equal(ds.string(T.StudyInstanceUID), source[0]!.string(T.StudyInstanceUID));
  const refs = new Set(allValues(ds, T.ReferencedSOPInstanceUID));
  for (const s of source) assert.ok(refs.has(s.string(T.SOPInstanceUID)!));
});

for (const which of ['asked', 'model'] as const) {
  test(`de-identified (${which === 'asked' ? 'asked for by the request' : "the model's setting, over the request's false"}): no identifying value, the de-identified source's UIDs`, () => {
    const secret = readDeidSecret(join(root, 'data'));
    const { bytes, ds } = segs[which]!;
    const deidSource = source.map((s, i) => parseDicom(deidentify(ct.files[i]!, { uidSecret: secret })).dataset);
    const text = bytes.toString('latin1');
    const patientId = source[0]!.string(T.PatientID)!;
    const patientName = source[0]!.string(T.PatientName)!;
    for (const v of [
      patientName,
      source[0]!.string(T.StudyInstanceUID)!,
      source[0]!.string(T.SeriesInstanceUID)!,
      ...source.map((s) => s.string(T.SOPInstanceUID)!),
    ]) {
      assert.ok(v.length > 3 && !text.includes(v), `${v} is gone from the SEG`);
    }
    assert.equal(ds.string(T.PatientID), patientPseudonym(patientId, secret));
    assert.notEqual(ds.string(T.PatientName), patientName);
    assert.equal(ds.string(0x00120062 /* PatientIdentityRemoved */), 'YES');
    assert.equal(ds.string(T.StudyInstanceUID), deidSource[0]!.string(T.StudyInstanceUID));
    assert.equal(ds.string(T.FrameOfReferenceUID), deidSource[0]!.string(T.FrameOfReferenceUID));
    const refs = new Set(allValues(ds, T.ReferencedSOPInstanceUID));
    for (const s of deidSource) assert.ok(refs.has(s.string(T.SOPInstanceUID)!), `references ${s.string(T.SOPInstanceUID)}`);
    assert.ok(allValues(ds, T.SeriesInstanceUID).includes(deidSource[0]!.string(T.SeriesInstanceUID)!), 'the referenced series is the de-identified one');
  });
}

test('the two de-identified results of the same patient share its pseudonym and study', () => {
  assert.equal(segs.asked!.ds.string(T.PatientID), segs.model!.ds.string(T.PatientID));
  assert.equal(segs.asked!.ds.string(T.StudyInstanceUID), segs.model!.ds.string(T.StudyInstanceUID));
  assert.notEqual(segs.asked!.ds.string(T.SOPInstanceUID), segs.model!.ds.string(T.SOPInstanceUID), 'two jobs, two SEG instances');
});

test('a "deidentify" that is not true or false is refused with nothing written, and the server keeps serving', async () => {
  const uploads = () => readdirSync(join(root, 'data', 'uploads')).sort();
  const before = uploads();
  const counts = JSON.stringify(await svc.jobs.counts());
  const r = await fetch(`${svc.url}/jobs`, {
    method: 'POST',
    headers: admin,
    body: caseForm({ model: 'ct', deidentify: 'yes please' }, { bytes: zip, name: 'ct.zip' }),
  });
  const b = (await r.json()) as { code: string; message: string };
  assert.equal(r.status, 400);
  assert.equal(b.code, 'BAD_FIELD');
  assert.match(b.message, /"deidentify" must be true or false/);
  const j = await fetch(`${svc.url}/jobs`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'ct', deidentify: 'yes', dicomweb: { studyInstanceUid: '1.2', seriesInstanceUid: '1.3' } }),
  });
  assert.equal(j.status, 400, await j.clone().text());
  assert.match(((await j.json()) as { message: string }).message, /"deidentify" must be true or false/);
  assert.deepEqual(uploads(), before);
  assert.equal(JSON.stringify(await svc.jobs.counts()), counts);
  assert.equal((await fetch(`${svc.url}/health`)).status, 200);
});
