/**
 * Corrections saved to the service: a done job's corrected label map is
 * recorded with the key, the author, the time, the model version and its
 * Dice against the model's output, and lands where `medseg finetune
 * --corrections` reads it; a correction on another grid, with labels the
 * model does not have, or for another key's job is refused with nothing
 * written. A DICOM job (a zip of the shared CT series) is corrected with a
 * SEG of the series or with dcm2niix's NIfTI of it, both stored on the grid
 * medseg reads the series on.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeVolume, readVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { readCorrections } from '@medseg/medseg/pipeline/finetune-corrections';
import { startService, type Service } from '../service.ts';
import { openDatabase } from '../store/db.ts';
import { AuditLog } from '../audit/log.ts';
import { correctionDice } from '../corrections/store.ts';
import { readDicomSeries } from '@medseg/medseg/io/dicom/series';
import { parseDicomSeg, segLabelmap } from '@medseg/medseg/io/dicom/seg-read';
import { writeDicomSeg } from '@medseg/medseg/io/dicom/seg-write';
import { readNifti } from '@medseg/medseg/io/nifti';
import { labelsOnGrid } from '@medseg/medseg/io/same-voxels';
import { auth, caseForm, ctSeries, hippocampusCase, submitAndWait, tempDir, testConfig, writeCtModel, writeCtZip, writeModels } from '../testing/fixture.ts';

let root: string;
let svc: Service;
let admin: Record<string, string>;

before(async () => {
  root = tempDir('medseg-corrections-');
  const models = writeModels(join(root, 'models'));
  writeCtModel(models);
  svc = await startService(testConfig(join(root, 'data'), models));
  admin = auth(svc.adminKey!);
});

after(async () => {
  await svc.close();
  rmSync(root, { recursive: true, force: true });
});

test('Dice of a correction against the model output, per label present in either', () => {
  assert.deepEqual(correctionDice([0, 1, 1, 2, 0], [0, 1, 0, 0, 2]), { perLabel: { 1: 2 / 3, 2: 0 }, mean: 1 / 3 });
  assert.deepEqual(correctionDice([0, 0], [0, 0]), { perLabel: {}, mean: null });
});

test('a corrected label map is recorded with who, when, the model version and its Dice, in the fine-tuning layout', async () => {
  const id = await submitAndWait(svc.url, admin, caseForm({ model: 'hippo' }, { bytes: hippocampusCase(2).bytes, name: 'c.nii.gz' }));
  const res = await fetch(`${svc.url}/jobs/${id}/result`, { headers: admin });
  const resultPath = join(root, 'result.nii.gz');
  writeFileSync(resultPath, Buffer.from(await res.arrayBuffer()));
  const result = await readVolume(resultPath);
  // The person paints a block of label 1 and erases every label 2.
  const fixed = Uint8Array.from(result.data as ArrayLike<number>, (v) => (v === 2 ? 0 : v));
  for (let i = 0; i < 500; i++) fixed[i] = 1;
  const corrected: Volume = { ...result, data: fixed };
  const post = (h: Record<string, string>, v: Volume, fields: Record<string, string> = {}) =>
    fetch(`${svc.url}/jobs/${id}/corrections`, {
      method: 'POST',
      headers: h,
      body: caseForm(fields, { bytes: encodeVolume('x.nii.gz', v), name: 'fixed.nii.gz' }),
    });

  const r = await post(admin, corrected, { author: 'Dr. A. Reader' });
  assert.equal(r.status, 201, await r.clone().text());
  const c = (await r.json()) as {
    id: string;
    jobId: string;
    modelVersion: string;
    author: string;
    keyId: string;
    at: string;
    dice: { perLabel: Record<string, number>; mean: number };
  };
  const job = (await (await fetch(`${svc.url}/jobs/${id}`, { headers: admin })).json()) as { modelVersion: string };
  assert.equal(c.jobId, id);
  assert.equal(c.modelVersion, job.modelVersion);
  assert.equal(c.author, 'Dr. A. Reader');
  assert.ok(Math.abs(Date.parse(c.at) - Date.now()) < 60_000);
  assert.deepEqual(c.dice, correctionDice(result.data as ArrayLike<number>, fixed));

  // Where fine-tuning reads corrections: the job's input and the corrected labels, alike named.
  const dir = join(root, 'data', 'corrections', 'hippo');
  const cases = readCorrections(dir, 1);
  assert.deepEqual(
    cases.map((k) => k.id),
    [id],
  );
  assert.deepEqual((await readVolume(cases[0]!.labelPath!)).data, fixed);
  assert.deepEqual((await readVolume(cases[0]!.imagePaths[0]!)).size, result.size);

  // Refused, with nothing written: another grid, labels the model lacks, another key's job, no file.
  const saved = () => readdirSync(join(dir, 'saved')).length;
  const before = saved();
  const small: Volume = {
    ...result,
    size: [result.size[0] - 1, result.size[1], result.size[2]],
    data: fixed.subarray(0, (result.size[0] - 1) * result.size[1] * result.size[2]),
  };
  const wrong = await post(admin, small);
  assert.equal(wrong.status, 422);
  assert.match(((await wrong.json()) as { message: string }).message, /not on the job's grid: size/);
  const seven = Uint8Array.from(fixed);
  seven[10] = 7;
  const badLabels = await post(admin, { ...result, data: seven });
  assert.equal(badLabels.status, 422);
  assert.match(((await badLabels.json()) as { message: string }).message, /values 7 are not labels of model hippo/);
  const keyRes = await fetch(`${svc.url}/keys`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'other', scopes: ['submit', 'read'] }),
  });
  const other = auth(((await keyRes.json()) as { secret: string }).secret);
  assert.equal((await post(other, corrected)).status, 404);
  const noFile = await fetch(`${svc.url}/jobs/${id}/corrections`, { method: 'POST', headers: admin, body: caseForm({ author: 'x' }) });
  assert.equal(noFile.status, 400);
  assert.equal(saved(), before, 'no refused correction left a file');
  assert.deepEqual(
    readdirSync(join(root, 'data', 'uploads')).filter((f) => f.startsWith('.')),
    [],
    'no upload left behind',
  );

  const list = (await (await fetch(`${svc.url}/jobs/${id}/corrections`, { headers: admin })).json()) as { corrections: { id: string; author: string }[] };
  assert.deepEqual(
    list.corrections.map((k) => [k.id, k.author]),
    [[c.id, 'Dr. A. Reader']],
  );
  const db = openDatabase(join(root, 'data', 'medseg.sqlite'));
  try {
    const saves = new AuditLog(db).records().filter((x) => x.action === 'correction.save');
    assert.deepEqual(
      saves.map((x) => [x.jobId, x.outcome]),
      [[id, 'saved']],
    );
  } finally {
    db.close();
  }
  assert.ok(existsSync(join(dir, 'saved', `${c.id}.nii.gz`)));

  // Fuzz: mutated and truncated corrections (gzip and plain NIfTI) get a 201 or a 4xx, never a 5xx, and leave no stray upload.
  let seed = 12345;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const plain = encodeVolume('x.nii', corrected);
  const gz = encodeVolume('x.nii.gz', corrected);
  const codes = new Map<number, number>();
  for (let k = 0; k < 60; k++) {
    const base = k % 2 ? plain : gz;
    let bytes = Buffer.from(base);
    if (k % 3 === 0) bytes = bytes.subarray(0, rand(bytes.length));
    else for (let f = 0; f < 1 + rand(8); f++) bytes[k % 3 === 1 ? rand(Math.min(bytes.length, 400)) : rand(bytes.length)] = rand(256);
    const res = await fetch(`${svc.url}/jobs/${id}/corrections`, {
      method: 'POST',
      headers: admin,
      body: caseForm({}, { bytes, name: k % 2 ? 'f.nii' : 'f.nii.gz' }),
    });
    codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
    assert.ok(res.status === 201 || (res.status >= 400 && res.status < 500), `mutation ${k}: ${res.status} ${await res.text()}`);
  }
  assert.ok((codes.get(201) ?? 0) < 60, `some mutations were refused: ${JSON.stringify([...codes])}`);
  assert.equal((await fetch(`${svc.url}/health`)).status, 200);
  assert.deepEqual(
    readdirSync(join(root, 'data', 'uploads')).filter((f) => f.startsWith('.')),
    [],
    'no upload left behind by the fuzz',
  );
});

test('a DICOM job is corrected with a SEG of its series or with a NIfTI of the same voxels in another order; other grids and non-SEG DICOM are refused', async () => {
  const ct = ctSeries();
  const zip = writeCtZip(join(root, 'ct.zip'));
  const id = await submitAndWait(svc.url, admin, caseForm({ model: 'ct' }, { bytes: zip, name: 'ct.zip' }));
  const source = await readDicomSeries(ct.dir);
  const resultSeg = parseDicomSeg(new Uint8Array(await (await fetch(`${svc.url}/jobs/${id}/result`, { headers: admin })).arrayBuffer()));
  const model = Uint8Array.from(segLabelmap(resultSeg, source).labelmap.data as ArrayLike<number>);
  const post = (bytes: Uint8Array, name: string, fields: Record<string, string> = {}) =>
    fetch(`${svc.url}/jobs/${id}/corrections`, { method: 'POST', headers: admin, body: caseForm(fields, { bytes, name }) });
  const dir = join(root, 'data', 'corrections', 'ct');
  const stored = async () => Uint8Array.from((await readVolume(join(dir, 'labels', `${id}.nii.gz`))).data as ArrayLike<number>);

  // A SEG of the series (as OHIF or the viewer write it): label 1 painted in a block, label 2 erased.
  const fixed = Uint8Array.from(model, (v) => (v === 2 ? 0 : v));
  for (let i = 1000; i < 3000; i++) fixed[i] = 1;
  const segments = [
    { number: 1, label: 'anterior' },
    { number: 2, label: 'posterior' },
  ];
  const seg = await writeDicomSeg({ ...source, data: fixed, channels: 1 }, source, segments);
  const r = await post(seg, 'fixed.dcm', { author: 'Dr. B' });
  assert.equal(r.status, 201, await r.clone().text());
  const c = (await r.json()) as { dice: unknown; author: string };
  assert.equal(c.author, 'Dr. B');
  assert.deepEqual(c.dice, correctionDice(model, fixed));
  assert.deepEqual(await stored(), fixed);
  const image = await readVolume(join(dir, 'images', `${id}_0000.nii.gz`));
  assert.deepEqual(image.size, source.size);
  assert.deepEqual(Array.from(image.data.subarray(0, 4096)), Array.from(source.data.subarray(0, 4096)), 'the series beside its correction, on the same grid');

  // Segments are matched to the model's labels by name: a SEG numbering "posterior" 1 stores label 2.
  const swapped = Uint8Array.from(fixed, (v) => (v === 1 ? 1 : 0));
  const byName = await writeDicomSeg({ ...source, data: swapped, channels: 1 }, source, [{ number: 1, label: 'Posterior' }]);
  assert.equal((await post(byName, 'by-name.dcm')).status, 201);
  assert.deepEqual(
    await stored(),
    Uint8Array.from(swapped, (v) => v * 2),
  );

  // dcm2niix's NIfTI of the series (rows flipped): the correction painted on it lands on the series voxel for voxel.
  const niiDir = join(root, 'ct-nifti');
  mkdirSync(niiDir, { recursive: true });
  execFileSync('dcm2niix', ['-b', 'n', '-z', 'n', '-f', 'ct', '-o', niiDir, ct.dir], { stdio: 'ignore' });
  const nifti = await readNifti(join(niiDir, 'ct.nii'));
  const onNifti: Volume = { ...nifti, data: labelsOnGrid(fixed, source, nifti), channels: 1 };
  assert.notDeepEqual(onNifti.data, fixed, 'the NIfTI holds the voxels in another order');
  const n = await post(encodeVolume('x.nii.gz', onNifti), 'fixed.nii.gz');
  assert.equal(n.status, 201, await n.clone().text());
  assert.deepEqual(await stored(), fixed);

  // Refused with nothing written: half a voxel off, a CT slice instead of a SEG, a SEG of other positions, a truncated SEG.
  const saved = () => readdirSync(join(dir, 'saved')).length;
  const before = saved();
  const refused = async (bytes: Uint8Array, name: string, status: number, pattern: RegExp) => {
    const res = await post(bytes, name);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(res.status, status, JSON.stringify(body));
    assert.match(`${body.code}: ${body.message}`, pattern);
  };
  const shifted: Volume = { ...onNifti, origin: [onNifti.origin[0] + 0.4, onNifti.origin[1], onNifti.origin[2]] };
  await refused(encodeVolume('x.nii.gz', shifted), 'shifted.nii.gz', 422, /WRONG_GRID: .*shifted/);
  await refused(ct.files[0]!, 'slice.dcm', 422, /BAD_SEG/);
  const elsewhere = await writeDicomSeg(
    { ...source, data: fixed, channels: 1 },
    {
      ...source,
      origin: [source.origin[0], source.origin[1], source.origin[2] + 40],
      meta: { ...source.meta, sopInstanceUIDs: source.meta.sopInstanceUIDs!.map((u) => `${u}.9`) },
    },
    segments,
  );
  await refused(elsewhere, 'elsewhere.dcm', 422, /WRONG_GRID/);
  await refused(seg.subarray(0, seg.length - 2000), 'cut.dcm', 422, /BAD_SEG/);
  // A DICOM file for an image job is not its correction.
  const hippoJob = await submitAndWait(svc.url, admin, caseForm({ model: 'hippo' }, { bytes: hippocampusCase(3).bytes, name: 'h.nii.gz' }));
  const wrongKind = await fetch(`${svc.url}/jobs/${hippoJob}/corrections`, {
    method: 'POST',
    headers: admin,
    body: caseForm({}, { bytes: seg, name: 'x.dcm' }),
  });
  assert.equal(wrongKind.status, 415);
  assert.equal(saved(), before, 'no refused correction left a file');

  // Fuzz: mutated and truncated SEGs get a 201 or a 4xx, never a 5xx, and leave no stray upload.
  let seed = 777;
  const rand = (k: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % k;
  for (let k = 0; k < 40; k++) {
    let bytes = Buffer.from(seg);
    if (k % 3 === 0) bytes = bytes.subarray(0, 132 + rand(bytes.length - 132));
    else for (let f = 0; f < 1 + rand(8); f++) bytes[132 + rand(k % 3 === 1 ? 2000 : bytes.length - 132)] = rand(256);
    const res = await post(bytes, 'f.dcm');
    assert.ok(res.status === 201 || (res.status >= 400 && res.status < 500), `mutation ${k}: ${res.status} ${await res.text()}`);
  }
  assert.equal((await fetch(`${svc.url}/health`)).status, 200);
  assert.deepEqual(
    readdirSync(join(root, 'data', 'uploads')).filter((f) => f.startsWith('.')),
    [],
    'no upload left behind',
  );
  assert.ok(readFileSync(join(dir, 'labels', `${id}.nii.gz`)).length > 0);
});
