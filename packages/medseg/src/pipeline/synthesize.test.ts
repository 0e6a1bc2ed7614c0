/**
 * synthesize on a tiny labelled dataset: three GAN steps write an nnU-Net
 * folder whose every file is tagged synthetic and that reads back as a
 * dataset; the fidelity measures run; the Wasserstein-1 distance matches
 * SciPy's.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDataset } from '../data/dataset.ts';
import { readNifti } from '../io/nifti.ts';
import { IDENTITY3 } from '../io/volume.ts';
import { writeNifti } from '../io/nifti.ts';
import type { Plan } from '../plan/types.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { runPython } from '../testing/python.ts';
import { rocAuc, wasserstein1 } from './synthesize-fidelity.ts';
import { synthesizePairs } from './synthesize.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-synth-'));
const dataset = join(tmp, 'ds');

/** Writes an nnU-Net dataset of `cases` (image, label) of one size, classes background / anterior / posterior. */
async function writeDataset(dir: string, size: [number, number, number], cases: { img: Float32Array; lab: Uint8Array }[]): Promise<void> {
  mkdirSync(join(dir, 'imagesTr'), { recursive: true });
  mkdirSync(join(dir, 'labelsTr'), { recursive: true });
  const geo = {
    size,
    channels: 1,
    spacing: [1, 1, 1] as [number, number, number],
    origin: [0, 0, 0] as [number, number, number],
    direction: [...IDENTITY3] as typeof IDENTITY3,
    meta: {},
  };
  for (const [i, c] of cases.entries()) {
    await writeNifti(join(dir, 'imagesTr', `case_${i}_0000.nii.gz`), { ...geo, data: c.img });
    await writeNifti(join(dir, 'labelsTr', `case_${i}.nii.gz`), { ...geo, data: c.lab });
  }
  writeFileSync(
    join(dir, 'dataset.json'),
    JSON.stringify({ channel_names: { 0: 'MRI' }, labels: { background: 0, anterior: 1, posterior: 2 }, numTraining: cases.length, file_ending: '.nii.gz' }),
  );
}

test('setup: a three-case labelled dataset of 16^3 images', async () => {
  const cases = [0, 1, 2].map((i) => {
    const img = new Float32Array(16 ** 3);
    const lab = new Uint8Array(16 ** 3);
    for (let z = 0; z < 16; z++)
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 16; x++) {
          const k = (z * 16 + y) * 16 + x;
          const r = Math.hypot(z - 8, y - 8 + i, x - 8);
          lab[k] = r < 3 ? 1 : r < 5 ? 2 : 0;
          img[k] = 50 + 40 * lab[k]! + 5 * Math.sin(k);
        }
    return { img, lab };
  });
  await writeDataset(dataset, [16, 16, 16], cases);
});

test('3 GAN steps write synthetic pairs tagged in every file, readable as a dataset, with a fidelity report', async () => {
  const plan: Plan = writeFixtureModel(join(tmp, 'fixture'), 'mri3d', []);
  plan.batchSize = 2;
  const out = join(tmp, 'synthetic');
  const r = await synthesizePairs({
    dataset,
    out,
    plan,
    steps: 3,
    count: 4,
    features: [8, 16, 32],
    fidelity: { classifierSteps: 2, segmentationSteps: 2 },
    seed: 5,
    log: () => {},
  });
  assert.equal(r.gan.steps, 3);
  assert.equal(r.files.length, 4);
  const ds = readDataset(out);
  assert.equal(ds.training.length, 4);
  assert.deepEqual(ds.labels, { 0: 'background', 1: 'anterior', 2: 'posterior' });
  const meta = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
  assert.equal(meta.synthetic.steps, 3);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.synthetic, true);
  assert.ok(manifest.files.every((f: { synthetic: boolean }) => f.synthetic === true));
  for (const c of ds.training) {
    for (const p of [...c.imagePaths, c.labelPath!]) {
      const v = await readNifti(p);
      assert.match(String(v.meta.extra?.descrip), /SYNTHETIC/, p);
      assert.deepEqual(v.size, [16, 16, 16]);
    }
  }
  const fid = JSON.parse(readFileSync(join(out, 'fidelity.json'), 'utf8'));
  assert.equal(fid.synthetic, true);
  assert.ok(fid.classifierAuc >= 0 && fid.classifierAuc <= 1, JSON.stringify(fid));
  assert.ok(fid.wasserstein1[0] > 0 && Number.isFinite(fid.wasserstein1[0]));
  assert.ok(Number.isFinite(fid.syntheticOnlyDice.mean));
  // A new folder is required: nothing already written is overwritten.
  await assert.rejects(synthesizePairs({ dataset, out, plan, steps: 1, log: () => {} }), /not empty/);
});

test('2D: one GAN step on a two-case 2D dataset writes 2D synthetic pairs', async () => {
  const ds2 = join(tmp, 'ds2d');
  const cases = [0, 1].map((i) => {
    const lab = new Uint8Array(480);
    const img = new Float32Array(480);
    for (let k = 0; k < 480; k++) {
      lab[k] = k % 20 > 8 + i ? 1 : Math.floor(k / 20) > 15 ? 2 : 0;
      img[k] = 10 + 20 * lab[k]! + (k % 7);
    }
    return { img, lab };
  });
  await writeDataset(ds2, [20, 24, 1], cases);
  const plan: Plan = writeFixtureModel(join(tmp, 'fixture2d'), 'gray2d', []);
  const r = await synthesizePairs({ dataset: ds2, out: join(tmp, 'syn2d'), plan, steps: 1, count: 2, features: [8, 16], fidelity: false, log: () => {} });
  assert.equal(r.fidelity, null);
  const v = await readNifti(join(tmp, 'syn2d', r.files[0]!.images[0]!));
  assert.deepEqual(v.size, [20, 24, 1]);
  assert.match(String(v.meta.extra?.descrip), /SYNTHETIC/);
  // caseIds: the GAN learns, and the masks vary, only the named cases' pairs.
  const one = await synthesizePairs({
    dataset: ds2,
    out: join(tmp, 'syn2d-one'),
    plan,
    caseIds: ['case_1'],
    steps: 1,
    count: 3,
    features: [8, 16],
    fidelity: false,
    log: () => {},
  });
  assert.deepEqual(
    one.files.map((f) => f.fromCase),
    ['case_1', 'case_1', 'case_1'],
  );
  await assert.rejects(
    synthesizePairs({ dataset: ds2, out: join(tmp, 'syn2d-none'), plan, caseIds: ['case_9'], steps: 1, log: () => {} }),
    /no training case 'case_9'/,
  );
});

test('Wasserstein-1 matches scipy.stats.wasserstein_distance; AUC by Mann-Whitney', () => {
  const a = [0.5, 2, 2, -1, 3.25, 7];
  const b = [1, 1.5, 9, -4];
  const ref = Number(runPython(['-c', `from scipy.stats import wasserstein_distance as w; print(w(${JSON.stringify(a)}, ${JSON.stringify(b)}))`]));
  assert.ok(Math.abs(wasserstein1(a, b) - ref) < 1e-12, `${wasserstein1(a, b)} vs ${ref}`);
  assert.equal(rocAuc([0, 1], [2, 3]), 1);
  assert.equal(rocAuc([0, 1], [1, 0]), 0.5);
});
