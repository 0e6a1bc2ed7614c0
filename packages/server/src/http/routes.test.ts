/**
 * Every route of the API on a real service (loopback, worker processes,
 * tiny model folders, real hippocampus crops), and each bad input: a clear
 * 4xx with a message, nothing written, the server still serving.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { encodeVolume, readVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { disposeModel, loadModel, predictVolumes } from '@medseg/medseg/infer/predict';
import { explainVolumes } from '@medseg/medseg/explain/explain-case';
import { removeOrphanFiles, startService, type Service } from '../service.ts';
import { openDatabase } from '../store/db.ts';
import { JobStore } from '../store/jobs.ts';
import { SqliteJobQueue } from '../store/queue.ts';
import { KeyStore } from '../store/keys.ts';
import { ModelCatalog } from '../models/catalog.ts';
import { buildApp } from './app.ts';
import { auth, caseForm, hippocampusCase, tempDir, testConfig, waitFor, writeModels } from '../testing/fixture.ts';

let root: string;
let models: string;
let svc: Service;
let admin: Record<string, string>;
const MAX_UPLOAD = 1024 * 1024;

async function newKey(scopes: string[], expiresInSeconds?: number): Promise<{ id: string; secret: string; h: Record<string, string> }> {
  const r = await fetch(`${svc.url}/keys`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ name: scopes.join('+'), scopes, ...(expiresInSeconds ? { expiresInSeconds } : {}) }),
  });
  assert.equal(r.status, 201, await r.clone().text());
  const b = (await r.json()) as { key: { id: string }; secret: string };
  return { id: b.key.id, secret: b.secret, h: auth(b.secret) };
}

async function submit(h: Record<string, string>, model: string, bytes: Uint8Array, name: string) {
  return fetch(`${svc.url}/jobs`, { method: 'POST', headers: h, body: caseForm({ model }, { bytes, name }) });
}

async function finished(h: Record<string, string>, id: string) {
  return waitFor(`job ${id} to finish`, async () => {
    const j = (await (await fetch(`${svc.url}/jobs/${id}`, { headers: h })).json()) as { state: string; progress: number; error: string | null };
    return ['done', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  });
}

const uploads = () => readdirSync(join(root, 'data', 'uploads'));
const results = () => readdirSync(join(root, 'data', 'results'));

before(async () => {
  root = tempDir();
  models = writeModels(join(root, 'models'), { slow: true });
  svc = await startService(testConfig(join(root, 'data'), models, { maxUploadBytes: MAX_UPLOAD }));
  assert.ok(svc.adminKey, 'a first start makes an admin key');
  admin = auth(svc.adminKey!);
});

after(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

test('the server listens on loopback only, and /health and /openapi.json need no key', async () => {
  assert.match(svc.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(`${svc.url}/health`)).status, 200);
  const doc = (await (await fetch(`${svc.url}/openapi.json`)).json()) as {
    openapi: string;
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> }>>;
    components: { schemas: Record<string, unknown> };
  };
  assert.equal(doc.openapi, '3.0.3');
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    '/jobs',
    '/jobs/{id}',
    '/jobs/{id}/corrections',
    '/jobs/{id}/fhir',
    '/jobs/{id}/maps/{name}',
    '/jobs/{id}/result',
    '/keys',
    '/keys/{id}',
    '/models',
    '/models/{id}/monitoring',
  ]);
  assert.deepEqual(Object.keys(doc.paths['/jobs']!).sort(), ['post']);
  assert.deepEqual(Object.keys(doc.paths['/jobs/{id}']!).sort(), ['delete', 'get']);
  assert.ok(doc.paths['/jobs']!.post!.requestBody!.content['multipart/form-data'], 'the upload is described as multipart');
  assert.ok(doc.paths['/jobs']!.post!.requestBody!.content['application/json'], 'the DICOMweb reference is described as JSON');
  for (const s of ['Job', 'Model', 'Error', 'ApiKey']) assert.ok(doc.components.schemas[s], `components/schemas/${s}`);
  assert.ok(doc.paths['/jobs/{id}']!.get!.responses['404'], 'error responses are described');
});

test('missing, malformed, unknown, expired and revoked keys get 401; a key without the scope gets 403', async () => {
  const reader = await newKey(['read']);
  const submitter = await newKey(['submit']);
  const shortLived = await newKey(['read'], 1);
  const revoked = await newKey(['read']);
  assert.equal((await fetch(`${svc.url}/keys/${revoked.id}`, { method: 'DELETE', headers: admin })).status, 200);
  const expect = async (h: Record<string, string>, path: string, status: number, code: RegExp, method = 'GET') => {
    const r = await fetch(`${svc.url}${path}`, { method, headers: h });
    const b = (await r.json()) as { statusCode: number; code: string; message: string };
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(b)}`);
    assert.equal(b.statusCode, status);
    assert.match(b.code, code);
    assert.ok(b.message.length > 10, b.message);
    if (status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
  };
  await expect({}, '/models', 401, /NO_KEY/);
  await expect({ authorization: 'Bearer nonsense' }, '/models', 401, /KEY_MALFORMED/);
  await expect(auth(`msk_0123456789abcdef_${'A'.repeat(43)}`), '/models', 401, /KEY_UNKNOWN/);
  await expect(auth(reader.secret.slice(0, -2) + 'zz'), '/models', 401, /KEY_UNKNOWN/);
  await expect(revoked.h, '/models', 401, /KEY_REVOKED/);
  await new Promise((r) => setTimeout(r, 1100));
  await expect(shortLived.h, '/models', 401, /KEY_EXPIRED/);
  await expect(reader.h, '/keys', 403, /SCOPE/);
  await expect(submitter.h, '/models', 403, /SCOPE/);
  const before = uploads();
  const r = await submit(reader.h, 'hippo', hippocampusCase(1).bytes, 'a.nii.gz');
  assert.equal(r.status, 403, 'a read-only key cannot submit');
  assert.deepEqual(uploads(), before, 'a refused key leaves nothing written');
  assert.equal((await fetch(`${svc.url}/models`, { headers: { 'x-api-key': reader.secret } })).status, 200, 'X-Api-Key works as well');
});

test('GET /models lists each model folder with its card and a version that is the SHA-256 of its plan and weights', async () => {
  writeFileSync(join(models, 'hippo', 'model-card.json'), JSON.stringify({ name: 'hippo fixture', intendedUse: 'tests' }));
  const r = await fetch(`${svc.url}/models`, { headers: admin });
  assert.equal(r.status, 200);
  const { models: list } = (await r.json()) as {
    models: { id: string; version: string; weightsSha256: string; card: unknown; dims: string; folds: number[] }[];
  };
  assert.deepEqual(
    list.map((m) => m.id),
    ['gray', 'hippo', 'slow'],
  );
  const hippo = list.find((m) => m.id === 'hippo')!;
  const h = createHash('sha256');
  h.update(readFileSync(join(models, 'hippo', 'plan.json')));
  h.update(readFileSync(join(models, 'hippo', 'fold_0', 'model_best.safetensors')));
  assert.equal(hippo.weightsSha256, h.digest('hex'));
  assert.equal(hippo.version, hippo.weightsSha256.slice(0, 12));
  assert.deepEqual(hippo.card, { name: 'hippo fixture', intendedUse: 'tests' });
  assert.equal(hippo.dims, '3d_fullres');
  assert.deepEqual(hippo.folds, [0]);
  assert.equal(list.find((m) => m.id === 'gray')!.card, null);
});

test('a NIfTI case goes through: 202, progress, done, and the mask in NIfTI equals the library prediction', async () => {
  const c = hippocampusCase(2);
  const r = await submit(admin, 'hippo', c.bytes, 'case.nii.gz');
  assert.equal(r.status, 202);
  const job = (await r.json()) as { id: string; state: string; modelVersion: string };
  assert.equal(r.headers.get('location'), `/jobs/${job.id}`);
  assert.equal(job.state, 'queued');
  const done = await finished(admin, job.id);
  assert.equal(done.state, 'done', JSON.stringify(done));
  assert.equal(done.progress, 1);
  const res = await fetch(`${svc.url}/jobs/${job.id}/result`, { headers: admin });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/gzip');
  assert.match(res.headers.get('content-disposition')!, /_seg\.nii\.gz"$/);
  const out = join(root, 'got.nii.gz');
  writeFileSync(out, Buffer.from(await res.arrayBuffer()));
  const got = await readVolume(out);
  const input = await readVolume(c.path);
  assert.deepEqual(got.size, input.size);
  assert.deepEqual(
    got.spacing.map((s) => s.toFixed(4)),
    input.spacing.map((s) => s.toFixed(4)),
  );
  const m = loadModel(join(models, 'hippo'));
  try {
    const ref = predictVolumes(m, [input]).labels.data;
    let same = 0;
    for (let i = 0; i < ref.length; i++) if (ref[i] === got.data[i]) same++;
    assert.ok(same / ref.length > 0.999, `agreement with the library's prediction ${same}/${ref.length}`);
  } finally {
    disposeModel(m);
  }
});

test('uncertainty and a Grad-CAM heat map on request: the summary in the job, NIfTI maps on the input grid equal to the library, a PNG overlay', async () => {
  const c = hippocampusCase(5);
  const r = await fetch(`${svc.url}/jobs`, {
    method: 'POST',
    headers: admin,
    body: caseForm({ model: 'hippo', uncertainty: 'true', explain: 'gradcam' }, { bytes: c.bytes, name: 'u.nii.gz' }),
  });
  assert.equal(r.status, 202, await r.clone().text());
  const submitted = (await r.json()) as { id: string; extras: { uncertainty: boolean; explain: string | null }; maps: Record<string, string> };
  assert.deepEqual(submitted.extras, { uncertainty: true, explain: 'gradcam' });
  assert.deepEqual(submitted.maps, {});
  assert.equal((await finished(admin, submitted.id)).state, 'done');
  const job = (await (await fetch(`${svc.url}/jobs/${submitted.id}`, { headers: admin })).json()) as {
    uncertainty: { score: number; flagged: boolean | null; threshold: number | null; members: number; sources: string[]; temperature: number; note?: string };
    explanation: { method: string; classIndex: number; layer: string | null; massInRegion: number };
    maps: Record<string, string>;
  };
  const id = submitted.id;
  assert.deepEqual(job.maps, {
    entropy: `/jobs/${id}/maps/entropy`,
    'mutual-information': `/jobs/${id}/maps/mutual-information`,
    heatmap: `/jobs/${id}/maps/heatmap`,
    overlay: `/jobs/${id}/maps/overlay`,
  });
  const png = await fetch(`${svc.url}${job.maps.overlay}`, { headers: admin });
  assert.equal(png.headers.get('content-type'), 'image/png');
  assert.deepEqual([...new Uint8Array(await png.arrayBuffer()).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  // The fixture model has no calibration: a score but no flag.
  assert.equal(job.uncertainty.flagged, null);
  assert.equal(job.uncertainty.temperature, 1);
  assert.equal(job.explanation.method, 'gradcam');
  assert.equal(job.explanation.classIndex, 1);
  const input = await readVolume(c.path);
  const maps: Record<string, Volume> = {};
  for (const name of ['entropy', 'mutual-information', 'heatmap'] as const) {
    const res = await fetch(`${svc.url}${job.maps[name]}`, { headers: admin });
    assert.equal(res.status, 200, name);
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    const out = join(root, `map-${name}.nii.gz`);
    writeFileSync(out, Buffer.from(await res.arrayBuffer()));
    maps[name] = await readVolume(out);
    assert.deepEqual(maps[name]!.size, input.size, name);
  }
  const m = loadModel(join(models, 'hippo'));
  try {
    const want = predictVolumes(m, [input], { uncertainty: {} }).uncertainty!;
    assert.ok(Math.abs(want.triageScore - job.uncertainty.score) < 1e-6, `score ${job.uncertainty.score} vs ${want.triageScore}`);
    assert.equal(job.uncertainty.members, want.score.members);
    let diff = 0;
    for (let i = 0; i < want.entropy.data.length; i++) diff = Math.max(diff, Math.abs(Number(want.entropy.data[i]) - Number(maps.entropy!.data[i])));
    assert.ok(diff < 1e-5, `entropy maps differ by ${diff}`);
    const heat = explainVolumes(m, [input], { method: 'gradcam', faithfulness: false }).heat.data;
    let hd = 0;
    for (let i = 0; i < heat.length; i++) hd = Math.max(hd, Math.abs(Number(heat[i]) - Number(maps.heatmap!.data[i])));
    assert.ok(hd < 1e-5, `heat maps differ by ${hd}`);
  } finally {
    disposeModel(m);
  }
  // A map the job does not have, and a name that is none: 404 and 400.
  const plain = (await (await submit(admin, 'hippo', c.bytes, 'p.nii.gz')).json()) as { id: string };
  assert.equal((await finished(admin, plain.id)).state, 'done');
  const none = await fetch(`${svc.url}/jobs/${plain.id}/maps/heatmap`, { headers: admin });
  assert.equal(none.status, 404);
  assert.match(((await none.json()) as { message: string }).message, /explain=gradcam/);
  assert.equal((await fetch(`${svc.url}/jobs/${plain.id}/maps/..%2Fmedseg.sqlite`, { headers: admin })).status, 400);
  // The maps stay with their result through the orphan sweep (nothing else runs now).
  await removeOrphanFiles(join(root, 'data'), svc.jobs);
  const kept = results().filter((f) => f.startsWith(`${id}.`));
  assert.equal(kept.length, 5, kept.join(', '));
});

test('NRRD and PNG cases come back in their own format', async () => {
  const input = await readVolume(hippocampusCase(3).path);
  const nrrd = encodeVolume('x.nrrd', input);
  // One slice of the crop, scaled to 8 bits, as a grey PNG for the 2D model.
  const [nx, ny] = input.size;
  const slice = new Uint8Array(nx * ny);
  let max = 0;
  for (let i = 0; i < nx * ny; i++) max = Math.max(max, Number(input.data[i + nx * ny * 10]));
  for (let i = 0; i < nx * ny; i++) slice[i] = Math.round((255 * Number(input.data[i + nx * ny * 10])) / (max || 1));
  const png = encodeVolume('x.png', { ...input, size: [nx, ny, 1], data: slice, meta: {} } as Volume);
  // Names say nothing true: the content decides.
  for (const [model, bytes, name, type, ending] of [
    ['hippo', nrrd, 'scan.bin', 'application/octet-stream', '.nrrd'],
    ['gray', png, 'photo.nii.gz', 'image/png', '.png'],
  ] as const) {
    const r = await submit(admin, model, bytes, name);
    assert.equal(r.status, 202, await r.clone().text());
    const { id } = (await r.json()) as { id: string };
    assert.equal((await finished(admin, id)).state, 'done');
    const res = await fetch(`${svc.url}/jobs/${id}/result`, { headers: admin });
    assert.equal(res.headers.get('content-type'), type);
    const out = join(root, `got${ending}`);
    writeFileSync(out, Buffer.from(await res.arrayBuffer()));
    const got = await readVolume(out);
    assert.deepEqual(got.size, model === 'gray' ? [nx, ny, 1] : input.size);
    assert.ok(
      [...got.data].every((v) => v >= 0 && v <= 2),
      'labels of the model',
    );
  }
});

test('bad inputs get a clear 4xx, leave nothing written, and the server keeps serving', async () => {
  const good = hippocampusCase(1).bytes;
  const raw = gunzipSync(good);
  const jobsBefore = JSON.stringify(await svc.jobs.counts());
  const uploadsBefore = uploads();
  const post = (body: string | FormData, headers: Record<string, string> = {}, path = '/jobs') =>
    fetch(`${svc.url}${path}`, { method: 'POST', headers: { ...admin, ...headers }, body });
  const twoFiles = caseForm({ model: 'hippo' }, { bytes: good, name: 'a.nii.gz' });
  twoFiles.append('file', new Blob([good]), 'b.nii.gz');
  const wrongField = new FormData();
  wrongField.append('model', 'hippo');
  wrongField.append('image', new Blob([good]), 'a.nii.gz');
  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    ['JSON without a DICOMweb reference', () => post(JSON.stringify({ model: 'hippo' }), { 'content-type': 'application/json' }), 400, /NO_DICOMWEB/],
    [
      'a DICOMweb reference on a server without a PACS',
      () =>
        post(JSON.stringify({ model: 'hippo', dicomweb: { studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4' } }), { 'content-type': 'application/json' }),
      400,
      /NO_PACS/,
    ],
    ['plain text', () => post('hello', { 'content-type': 'text/plain' }), 415, /NOT_MULTIPART/],
    ['an unknown content type', () => post('<a/>', { 'content-type': 'application/xml' }), 415, /MEDIA_TYPE/],
    ['an oversized upload', () => post(caseForm({ model: 'hippo' }, { bytes: new Uint8Array(MAX_UPLOAD + 1000).fill(7), name: 'big.nii' })), 413, /TOO_LARGE/],
    ['malformed JSON', () => post('{"name": "x", scopes: [', { 'content-type': 'application/json' }, '/keys'), 400, /JSON/],
    [
      'JSON against the schema',
      () => post(JSON.stringify({ name: 'x', scopes: ['root'] }), { 'content-type': 'application/json' }, '/keys'),
      400,
      /BAD_REQUEST|VALIDATION/,
    ],
    ['an unknown model', () => post(caseForm({ model: 'liver' }, { bytes: good, name: 'a.nii.gz' })), 400, /UNKNOWN_MODEL/],
    ['a model path', () => post(caseForm({ model: '../models/hippo' }, { bytes: good, name: 'a.nii.gz' })), 400, /UNKNOWN_MODEL/],
    ['no model', () => post(caseForm({}, { bytes: good, name: 'a.nii.gz' })), 400, /NO_MODEL/],
    ['no file', () => post(caseForm({ model: 'hippo' })), 400, /NO_FILE/],
    ['a path-traversal file name', () => post(caseForm({ model: 'hippo' }, { bytes: good, name: '../../../etc/cron.d/x.nii.gz' })), 400, /BAD_FILE_NAME/],
    ['a truncated NIfTI', () => post(caseForm({ model: 'hippo' }, { bytes: raw.subarray(0, raw.length >> 1), name: 'a.nii' })), 400, /INVALID_/],
    ['a truncated .nii.gz', () => post(caseForm({ model: 'hippo' }, { bytes: good.subarray(0, good.length >> 1), name: 'a.nii.gz' })), 400, /INVALID_/],
    ['a NIfTI header alone', () => post(caseForm({ model: 'hippo' }, { bytes: gzipSync(raw.subarray(0, 352)), name: 'a.nii.gz' })), 400, /INVALID_/],
    [
      'bytes that are no image',
      () => post(caseForm({ model: 'hippo' }, { bytes: Buffer.from('MZ\x90\x00 not an image at all'), name: 'a.nii.gz' })),
      415,
      /UNSUPPORTED_CONTENT/,
    ],
    [
      'a detached NRRD header',
      () =>
        post(
          caseForm(
            { model: 'hippo' },
            { bytes: Buffer.from('NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\ndata file: ../medseg.sqlite\n\n'), name: 'a.nrrd' },
          ),
        ),
      415,
      /UNSUPPORTED_CONTENT/,
    ],
    ['an empty file', () => post(caseForm({ model: 'hippo' }, { bytes: new Uint8Array(0), name: 'a.nii' })), 400, /EMPTY_FILE/],
    ['two files', () => post(twoFiles), 413, /LIMIT/],
    ['the file under another field', () => post(wrongField), 400, /BAD_FIELD/],
    [
      'uncertainty that is not true or false',
      () => post(caseForm({ model: 'hippo', uncertainty: 'yes' }, { bytes: good, name: 'a.nii.gz' })),
      400,
      /BAD_FIELD/,
    ],
    [
      'an explanation method a job cannot run',
      () => post(caseForm({ model: 'hippo', explain: 'occlusion' }, { bytes: good, name: 'a.nii.gz' })),
      400,
      /BAD_FIELD/,
    ],
    ['a malformed job id', () => fetch(`${svc.url}/jobs/..%2F..%2Fmedseg.sqlite`, { headers: admin }), 400, /BAD_REQUEST|VALIDATION/],
    ['an unknown job', () => fetch(`${svc.url}/jobs/${'0'.repeat(32)}`, { headers: admin }), 404, /NO_JOB/],
    ['the result of an unknown job', () => fetch(`${svc.url}/jobs/${'0'.repeat(32)}/result`, { headers: admin }), 404, /NO_JOB/],
    ['an unknown route', () => fetch(`${svc.url}/admin`, { headers: admin }), 404, /NO_ROUTE/],
  ];
  for (const [what, call, status, code] of cases) {
    const r = await call();
    const text = await r.text();
    assert.equal(r.status, status, `${what}: ${text}`);
    const b = JSON.parse(text) as { statusCode: number; code: string; message: string };
    assert.equal(b.statusCode, status, what);
    assert.match(b.code, code, `${what}: ${text}`);
    assert.ok(b.message.length > 10, `${what}: a message says what was wrong (${b.message})`);
    assert.ok(!/\s+at\s.+:\d+:\d+/.test(text) && !text.includes(root), `${what}: no stack trace or server path in ${text}`);
    assert.deepEqual(uploads(), uploadsBefore, `${what}: nothing written`);
    assert.equal((await fetch(`${svc.url}/health`)).status, 200, `${what}: still serving`);
  }
  assert.equal(JSON.stringify(await svc.jobs.counts()), jobsBefore, 'no job was made');
});

test('a key sees only its own jobs; cancelling a finished job is a 409, and a server fault is a 500 without internals', async () => {
  const a = await newKey(['submit', 'read']);
  const b = await newKey(['submit', 'read']);
  const r = await submit(a.h, 'hippo', hippocampusCase(4).bytes, 'x.nii.gz');
  const { id } = (await r.json()) as { id: string };
  assert.equal((await fetch(`${svc.url}/jobs/${id}`, { headers: b.h })).status, 404, "another key's job is not there for b");
  assert.equal((await fetch(`${svc.url}/jobs/${id}`, { method: 'DELETE', headers: b.h })).status, 404);
  assert.equal((await finished(a.h, id)).state, 'done');
  const del = await fetch(`${svc.url}/jobs/${id}`, { method: 'DELETE', headers: a.h });
  assert.equal(del.status, 409);
  assert.match(((await del.json()) as { message: string }).message, /already done/);
  const job = (await svc.jobs.get(id))!;
  rmSync(join(root, 'data', job.resultPath!));
  const res = await fetch(`${svc.url}/jobs/${id}/result`, { headers: a.h });
  const text = await res.text();
  assert.equal(res.status, 500);
  assert.deepEqual(JSON.parse(text), {
    statusCode: 500,
    error: 'Internal Server Error',
    code: 'INTERNAL',
    message: 'internal server error (logged on the server)',
  });
  assert.ok(!results().includes(job.resultPath!.slice('results/'.length)));
});

/** An API without workers, on its own database: jobs stay queued. */
async function apiOnly(rateMax = 1000, authFailureMax = 20) {
  const dir = tempDir();
  const db = openDatabase(join(dir, 'db.sqlite'));
  const jobs = new SqliteJobQueue(new JobStore(db));
  const keys = new KeyStore(db);
  for (const d of ['uploads', 'results']) rmSync(join(dir, d), { force: true, recursive: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'uploads'));
  mkdirSync(join(dir, 'results'));
  const app = await buildApp({
    jobs,
    keys,
    catalog: new ModelCatalog(models),
    filesDir: dir,
    maxUploadBytes: MAX_UPLOAD,
    maxVoxelBytes: 1 << 30,
    maxDecompressedBytes: 1 << 30,
    rateLimit: { max: rateMax, windowMs: 60_000 },
    authFailureLimit: { max: authFailureMax, windowMs: 60_000 },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const k1 = (await keys.create({ name: 'one', scopes: ['submit', 'read'] })).secret;
  const k2 = (await keys.create({ name: 'two', scopes: ['read'] })).secret;
  return {
    url,
    jobs,
    k1,
    k2,
    close: async () => {
      await app.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('DELETE /jobs/:id cancels a queued job, which then never gets a result', async () => {
  const api = await apiOnly();
  try {
    const r = await fetch(`${api.url}/jobs`, {
      method: 'POST',
      headers: auth(api.k1),
      body: caseForm({ model: 'hippo' }, { bytes: hippocampusCase(5).bytes, name: 'x.nii.gz' }),
    });
    const { id } = (await r.json()) as { id: string };
    const del = await fetch(`${api.url}/jobs/${id}`, { method: 'DELETE', headers: auth(api.k1) });
    assert.equal(del.status, 200);
    assert.equal(((await del.json()) as { state: string }).state, 'cancelled');
    assert.equal(await api.jobs.claim('w', 1000), null, 'a cancelled job is not handed to a worker');
    const res = await fetch(`${api.url}/jobs/${id}/result`, { headers: auth(api.k1) });
    assert.equal(res.status, 409);
    assert.match(((await res.json()) as { message: string }).message, /cancelled/);
    assert.equal((await fetch(`${api.url}/jobs/${id}`, { method: 'DELETE', headers: auth(api.k1) })).status, 409, 'cancelling twice');
  } finally {
    await api.close();
  }
});

test('rate limits count per key: the sixth request in the window is a 429, another key is unaffected', async () => {
  const api = await apiOnly(5);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await fetch(`${api.url}/models`, { headers: auth(api.k1) })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    const r = await fetch(`${api.url}/models`, { headers: auth(api.k1) });
    const b = (await r.json()) as { code: string; message: string };
    assert.equal(b.code, 'RATE_LIMITED');
    assert.match(b.message, /rate limit of 5 requests/);
    assert.equal((await fetch(`${api.url}/models`, { headers: auth(api.k2) })).status, 200);
  } finally {
    await api.close();
  }
});

test('CORS is closed: no Access-Control-Allow-Origin on answers, and preflights are refused', async () => {
  const r = await fetch(`${svc.url}/models`, { headers: { ...admin, origin: 'https://evil.example' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  const pre = await fetch(`${svc.url}/jobs`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 404);
  assert.equal(pre.headers.get('access-control-allow-origin'), null);
  assert.equal(pre.headers.get('access-control-allow-methods'), null);
});

test('DELETE /jobs/:id stops a running job: its worker gives up at the next heartbeat and writes nothing', async () => {
  // The slow model runs for seconds, so the job is still running when it is cancelled.
  const r = await submit(admin, 'slow', hippocampusCase(6).bytes, 'x.nii.gz');
  const { id } = (await r.json()) as { id: string };
  await waitFor(
    'the job to run',
    async () => {
      const j = (await (await fetch(`${svc.url}/jobs/${id}`, { headers: admin })).json()) as { state: string; progress: number };
      return j.state === 'running' && j.progress > 0.05 ? j : undefined;
    },
    60_000,
    20,
  );
  const del = await fetch(`${svc.url}/jobs/${id}`, { method: 'DELETE', headers: admin });
  assert.equal(del.status, 200);
  assert.equal(((await del.json()) as { state: string }).state, 'cancelled');
  // The worker takes the next job once it has let this one go.
  const next = await submit(admin, 'hippo', hippocampusCase(7).bytes, 'y.nii.gz');
  const nextId = ((await next.json()) as { id: string }).id;
  assert.equal((await finished(admin, nextId)).state, 'done');
  assert.equal((await svc.jobs.get(id))!.state, 'cancelled');
  assert.equal(await svc.jobs.eventCount(id, 'completed'), 0);
  assert.equal(await svc.jobs.eventCount(id, 'outcome-rejected'), 0, 'the worker stopped early instead of finishing and being refused');
  assert.deepEqual(
    results().filter((f) => f.startsWith(id)),
    [],
    'no result file',
  );
});

test('an address that fails key checks too often gets 429 before any key is hashed', async () => {
  const api = await apiOnly(1000, 3);
  try {
    const wrong = auth(api.k1.slice(0, -3) + 'xyz');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${api.url}/models`, { headers: wrong })).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    const r = await fetch(`${api.url}/models`, { headers: auth(api.k1) });
    assert.equal(r.status, 429, 'the address waits, whatever key it sends');
    assert.equal(((await r.json()) as { code: string }).code, 'AUTH_RATE_LIMITED');
    assert.equal((await fetch(`${api.url}/health`)).status, 200);
  } finally {
    await api.close();
  }
});
