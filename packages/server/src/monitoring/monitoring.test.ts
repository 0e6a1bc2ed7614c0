/**
 * Post-deployment monitoring on a real service: the hippocampus model's
 * training fingerprint is computed from eight real training cases; a ninth
 * real case goes through unflagged, the same case with its intensities
 * multiplied by ten is flagged for intensity, and with 0.7 mm voxels for
 * spacing; the window of the three is flagged as drifting.
 * Bad queries get a clear 4xx, nothing is written, the server keeps serving.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { computeFingerprint, saveFingerprint } from '@medseg/medseg/data/fingerprint';
import { encodeVolume, readVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { dataPath } from '@medseg/medseg/testing/data';
import { startService, type Service } from '../service.ts';
import { openDatabase } from '../store/db.ts';
import { auth, caseForm, submitAndWait, tempDir, testConfig, writeModels } from '../testing/fixture.ts';
import type { InputFingerprint } from './input-fingerprint.ts';
import type { DriftFlag, WindowSummary } from './drift.ts';

let root: string;
let svc: Service;
let admin: Record<string, string>;
const IMAGES = dataPath('msd-hippocampus', 'images');
const names = readdirSync(IMAGES)
  .filter((f) => f.endsWith('.nii.gz'))
  .sort();
const TRAINING = names.slice(0, 8);
const HELD_OUT = names[10]!;

interface Monitoring {
  model: string;
  version: string;
  reference: { trainingCases: number; spacing: { min: number; max: number }[] };
  cases: { jobId: string; input: InputFingerprint; flags: DriftFlag[]; drift: boolean }[];
  window: WindowSummary;
}

async function runCase(v: Volume): Promise<string> {
  return submitAndWait(svc.url, admin, caseForm({ model: 'hippo' }, { bytes: encodeVolume('c.nii.gz', v), name: 'c.nii.gz' }));
}

const ids: Record<string, string> = {};
let source: Volume;

before(async () => {
  root = tempDir('medseg-monitoring-');
  const models = writeModels(join(root, 'models'));
  // One tile and one network pass per case (a patch larger than a crop, no mirroring): the checks, not the prediction, are under test.
  const planPath = join(models, 'hippo', 'plan.json');
  const plan = JSON.parse(readFileSync(planPath, 'utf8')) as { inference: Record<string, unknown> };
  writeFileSync(planPath, JSON.stringify({ ...plan, patchSize: [40, 56, 44], inference: { ...plan.inference, mirror: false } }));
  const fp = await computeFingerprint(
    {
      dir: dataPath('msd-hippocampus'),
      name: 'hippocampus',
      channels: ['MRI'],
      labels: { 0: 'background', 1: 'anterior', 2: 'posterior' },
      fileEnding: '.nii.gz',
      training: TRAINING.map((f) => ({ id: f, imagePaths: [join(IMAGES, f)], labelPath: dataPath('msd-hippocampus', 'labels', f) })),
      test: [],
    },
    { totalSamples: 40_000 },
  );
  await saveFingerprint(join(models, 'hippo', 'fingerprint.json'), fp);
  svc = await startService(testConfig(join(root, 'data'), models, { monitoring: { window: 10, expectedFlagRate: 0.05, alpha: 0.05 } }));
  admin = auth(svc.adminKey!);
  source = await readVolume(join(IMAGES, HELD_OUT));
  ids.plain = await runCase(source);
  ids.scaled = await runCase({ ...source, data: (source.data as Int16Array).map((x) => x * 10) as Volume['data'] });
  ids.spacing = await runCase({ ...source, spacing: [0.7, 0.7, 0.7] });
});

after(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

async function monitoring(query = '', h = admin): Promise<Response> {
  return fetch(`${svc.url}/models/hippo/monitoring${query}`, { headers: h });
}

test('an in-distribution case raises no flag; rescaled intensities and a finer spacing are flagged with their reasons', async () => {
  const r = await monitoring();
  assert.equal(r.status, 200);
  const m = (await r.json()) as Monitoring;
  assert.equal(m.reference.trainingCases, 8);
  assert.deepEqual(
    m.reference.spacing,
    [1, 1, 1].map(() => ({ min: 1, max: 1 })),
  );
  const byJob = Object.fromEntries(m.cases.map((c) => [c.jobId, c]));
  const plain = byJob[ids.plain!]!;
  const scaled = byJob[ids.scaled!]!;
  const coarse = byJob[ids.spacing!]!;
  assert.deepEqual(
    m.cases.map((c) => c.jobId),
    [ids.spacing, ids.scaled, ids.plain],
    'newest first',
  );
  assert.deepEqual(plain.flags, [], JSON.stringify(plain.input));
  assert.equal(plain.drift, false);
  assert.deepEqual(plain.input.shape, [source.size[2], source.size[1], source.size[0]]);
  assert.deepEqual(plain.input.spacing, [1, 1, 1]);
  assert.ok(plain.input.uncertainty !== null && plain.input.uncertainty >= 0 && plain.input.uncertainty <= 1, String(plain.input.uncertainty));
  // The z-score normalised network sees the same input, so the same voxels are summarised: ten times the intensities.
  assert.equal(scaled.input.intensityRegion, plain.input.intensityRegion);
  // (float32 voxels: equal to float32 rounding)
  assert.ok(Math.abs(scaled.input.intensity[0]!.median / plain.input.intensity[0]!.median - 10) < 1e-5, JSON.stringify([scaled.input, plain.input]));
  assert.deepEqual(
    scaled.flags.map((f) => f.check),
    ['intensity'],
  );
  assert.match(scaled.flags[0]!.reason, /median intensity .* is outside the training foreground's 0\.5-99\.5 percentile range/);
  assert.deepEqual(
    coarse.flags.map((f) => f.check),
    ['spacing', 'spacing', 'spacing'],
  );
  assert.match(coarse.flags[0]!.reason, /^z spacing 0\.7 mm is outside the training range 1-1 mm/);
  // Two of three flagged where 5 % are expected: P(X >= 2 | n = 3, p = 0.05) = 3 p^2 (1 - p) + p^3.
  const p = 0.05;
  assert.equal(m.window.cases, 3);
  assert.equal(m.window.flagged, 2);
  assert.equal(m.window.expectedRateFrom, 'setting');
  assert.ok(Math.abs(m.window.pValue - (3 * p * p * (1 - p) + p ** 3)) < 1e-12, String(m.window.pValue));
  assert.equal(m.window.drift, true);
  assert.deepEqual(m.window.byCheck, { spacing: 1, extent: 0, intensity: 1, modality: 0, uncertainty: 0 });
  const narrow = (await (await monitoring('?window=1&limit=1')).json()) as Monitoring;
  assert.equal(narrow.cases.length, 1);
  assert.equal(narrow.window.cases, 1);
});

test('a key sees only its own jobs in the monitoring listing', async () => {
  const kr = await fetch(`${svc.url}/keys`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'reader', scopes: ['read'] }),
  });
  const { secret } = (await kr.json()) as { secret: string };
  const m = (await (await monitoring('', auth(secret))).json()) as Monitoring;
  assert.deepEqual(m.cases, []);
  assert.equal(m.window.cases, 0);
  assert.equal(m.window.drift, false);
});

test('bad monitoring queries get a clear 4xx, write nothing, and the server keeps serving', async () => {
  const count = () => {
    const db = openDatabase(join(root, 'data', 'medseg.sqlite'));
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM monitoring_cases').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const before = count();
  const expect = async (path: string, status: number, code: RegExp, h: Record<string, string> = admin) => {
    const r = await fetch(`${svc.url}${path}`, { headers: h });
    const b = (await r.json()) as { code: string; message: string };
    assert.equal(r.status, status, `${path}: ${JSON.stringify(b)}`);
    assert.match(b.code, code, path);
    assert.ok(b.message.length > 10, b.message);
  };
  await expect('/models/nope/monitoring', 404, /UNKNOWN_MODEL/);
  await expect('/models/..%2F..%2Fetc/monitoring', 400, /BAD_REQUEST|FST_ERR_VALIDATION/);
  await expect('/models/hippo/monitoring?limit=abc', 400, /BAD_REQUEST|FST_ERR_VALIDATION/);
  await expect('/models/hippo/monitoring?limit=0', 400, /BAD_REQUEST|FST_ERR_VALIDATION/);
  await expect('/models/hippo/monitoring?window=100000', 400, /BAD_REQUEST|FST_ERR_VALIDATION/);
  await expect('/models/hippo/monitoring?since=yesterday', 400, /BAD_REQUEST|FST_ERR_VALIDATION/);
  await expect('/models/hippo/monitoring', 401, /NO_KEY/, {});
  const kr = await fetch(`${svc.url}/keys`, {
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'submitter', scopes: ['submit'] }),
  });
  await expect('/models/hippo/monitoring', 403, /SCOPE/, auth(((await kr.json()) as { secret: string }).secret));
  assert.equal(count(), before);
  assert.equal((await fetch(`${svc.url}/health`)).status, 200);
  assert.equal((await monitoring()).status, 200);
});
