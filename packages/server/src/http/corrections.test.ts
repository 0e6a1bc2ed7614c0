/**
 * Corrections saved to the service: a done job's corrected label map is
 * recorded with the key, the author, the time, the model version and its
 * Dice against the model's output, and lands where `medseg finetune
 * --corrections` reads it; a correction on another grid, with labels the
 * model does not have, or for another key's job is refused with nothing
 * written.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeVolume, readVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { readCorrections } from '@medseg/medseg/pipeline/finetune-corrections';
import { startService, type Service } from '../service.ts';
import { openDatabase } from '../store/db.ts';
import { AuditLog } from '../audit/log.ts';
import { correctionDice } from '../corrections/store.ts';
import { auth, caseForm, hippocampusCase, submitAndWait, tempDir, testConfig, writeModels } from '../testing/fixture.ts';

let root: string;
let svc: Service;
let admin: Record<string, string>;

before(async () => {
  root = tempDir('medseg-corrections-');
  svc = await startService(testConfig(join(root, 'data'), writeModels(join(root, 'models'))));
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
