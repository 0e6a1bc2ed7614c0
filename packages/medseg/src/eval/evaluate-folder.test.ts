/**
 * evaluateFolder on real files against an independent NumPy/SciPy reference
 * (evaluate_folder_ref.py): DRIVE's second observer vs the first inside the
 * field of view, and MSD hippocampus labels vs shifted copies written as
 * NIfTI with an anisotropic spacing (nnU-Net-style `_0000` reference names,
 * one prediction missing, stray files around).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume, writeVolume } from '../io/read.ts';
import type { Vec3, Volume } from '../io/volume.ts';
import { dataPath } from '../testing/data.ts';
import { caseStem, evaluateFolder, type FolderEvaluation } from './evaluate-folder.ts';
import { metricValue } from './statistics/rows.ts';
import { runPythonJson } from '../testing/python.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface RefRow {
  case: string;
  label: number;
  dice: number | string;
  sensitivity: number | string;
  specificity: number | string;
  hd95: number | string;
  auc?: number | string;
}

function pythonReference(job: unknown): RefRow[] {
  return runPythonJson<RefRow[]>([join(here, 'evaluate_folder_ref.py')], job);
}

function num(v: number | string): number {
  return typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : Number(v);
}

function assertClose(actual: number | undefined, expected: number, tol: number, what: string): void {
  assert.ok(actual !== undefined, `${what}: missing`);
  if (!Number.isFinite(expected)) return assert.ok(Object.is(actual, expected), `${what}: ${actual} vs ${expected}`);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);
}

function compare(ev: FolderEvaluation, ref: RefRow[]): void {
  assert.equal(ev.rows.length, ref.length);
  for (const e of ref) {
    const row = ev.rows.find((r) => r.case === e.case && r.label === e.label);
    assert.ok(row, `no row for case ${e.case} label ${e.label}`);
    for (const m of ['dice', 'sensitivity', 'specificity'] as const) assertClose(metricValue(row, m), num(e[m]), 1e-9, `${e.case}/${e.label} ${m}`);
    assertClose(metricValue(row, 'hd95'), num(e.hd95), 1e-6, `${e.case}/${e.label} hd95`);
    if (e.auc !== undefined) assertClose(metricValue(row, 'auc'), num(e.auc), 1e-9, `${e.case}/${e.label} auc`);
  }
  // the summary's mean is the mean of the finite per-case values
  for (const label of ev.labels) {
    const vals = ref
      .filter((r) => r.label === label)
      .map((r) => num(r.dice))
      .filter(Number.isFinite);
    const s = ev.summary.find((a) => a.metric === 'dice' && a.label === label)!;
    assertClose(s.mean, vals.reduce((a, b) => a + b, 0) / vals.length, 1e-12, `mean Dice label ${label}`);
    assert.equal(s.nFinite, vals.length);
    assert.ok(s.ci.lower <= s.mean && s.mean <= s.ci.upper, `CI of label ${label}`);
  }
}

test('caseStem strips image extensions only', () => {
  assert.equal(caseStem('/a/hippocampus_001.nii.gz'), 'hippocampus_001');
  assert.equal(caseStem('x.y.nrrd'), 'x.y');
  assert.equal(caseStem('01_manual1.GIF'), '01_manual1');
});

test('DRIVE: 2nd observer vs 1st inside the FOV (0/1 vs 0/255 binarized) matches NumPy/SciPy', async () => {
  const d = dataPath('drive', 'testing');
  const ev = await evaluateFolder({
    predictions: join(d, '2nd_manual'),
    references: join(d, '1st_manual'),
    regionMasks: join(d, 'mask'),
    pairing: /^(\d+)_/,
    binarize: true,
  });
  assert.deepEqual(ev.labels, [1]);
  assert.equal(ev.cases.length, 20);
  assert.deepEqual(ev.missingPredictions, []);
  const pairs = ev.cases.map((c) => ({ case: c.case, pred: c.prediction, ref: c.reference, region: c.regionMask }));
  assert.ok(
    pairs.every((p) => p.pred?.endsWith(`${p.case}_manual2.gif`) && p.region?.endsWith(`${p.case}_test_mask.gif`)),
    'DRIVE pairing',
  );
  compare(ev, pythonReference({ pairs, labels: [1], binarize: true }));
  // without binarizing, 0/1 vs 0/255 share no label value: a wrong setup shows as Dice 0, not as a crash
  const raw = await evaluateFolder({
    predictions: join(d, '2nd_manual'),
    references: join(d, '1st_manual'),
    pairing: /^(\d+)_/,
    labels: [1],
    distances: false,
  });
  assert.equal(metricValue(raw.rows[0]!, 'dice'), 0);
});

describe('MSD hippocampus vs shifted copies (NIfTI, anisotropic spacing)', () => {
  let tmp: string;
  const ids = ['hippocampus_001', 'hippocampus_003', 'hippocampus_006', 'hippocampus_007'];
  const spacing: Vec3 = [0.9, 1.2, 2.0];
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-evalfolder-'));
    mkdirSync(join(tmp, 'refs'));
    mkdirSync(join(tmp, 'preds'));
    for (const [k, id] of ids.entries()) {
      const v = await readVolume(dataPath('msd-hippocampus', 'labels', `${id}.nii.gz`));
      const ref: Volume = { ...v, spacing };
      await writeVolume(join(tmp, 'refs', `${id}_0000.nii.gz`), ref);
      if (k === 2) continue; // a missing prediction
      const [nx, ny, nz] = v.size;
      const shifted = new Uint8Array(v.data.length);
      const dx = 1 + (k % 2); // shift by 1 or 2 voxels along x, and 1 along z for one case
      const dz = k === 3 ? 1 : 0;
      for (let z = 0; z < nz; z++)
        for (let y = 0; y < ny; y++)
          for (let x = 0; x < nx; x++) {
            if (x + dx < nx && z + dz < nz) shifted[x + dx + nx * (y + ny * (z + dz))] = v.data[x + nx * (y + ny * z)]!;
          }
      if (k === 1) for (let i = 0; i < shifted.length; i++) if (shifted[i] === 2) shifted[i] = 0; // label 2 missed entirely
      await writeVolume(join(tmp, 'preds', `${id}.nii.gz`), { ...ref, data: shifted });
    }
    await writeVolume(join(tmp, 'preds', 'hippocampus_999.nii.gz'), { ...(await readVolume(join(tmp, 'refs', `${ids[0]}_0000.nii.gz`))) });
    writeFileSync(join(tmp, 'preds', 'plans.json'), '{}');
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('pairs _0000 references, reports the missing prediction, matches NumPy/SciPy', async () => {
    const ev = await evaluateFolder({ predictions: join(tmp, 'preds'), references: join(tmp, 'refs'), tau: 1.5 });
    assert.deepEqual(ev.labels, [1, 2]);
    assert.deepEqual(
      ev.cases.map((c) => c.case),
      ids,
    );
    assert.deepEqual(ev.missingPredictions, ['hippocampus_006']);
    assert.deepEqual(ev.unmatchedPredictions, [join(tmp, 'preds', 'hippocampus_999.nii.gz')]);
    const missing = ev.rows.filter((r) => r.case === 'hippocampus_006');
    assert.ok(
      missing.length === 2 && missing.every((r) => r.status === 'missing_prediction' && r.dice === 0 && r.hd95 === Infinity),
      'missing-prediction rows',
    );
    assert.equal(ev.rows.find((r) => r.case === 'hippocampus_003' && r.label === 2)!.hd95, Infinity);
    // scored with the reference's spacing (float32 in the NIfTI header)
    for (const e of ev.evaluations) assert.deepEqual(e.spacing, [...Float32Array.from(spacing)], `spacing of ${e.case}`);
    const pairs = ev.cases.map((c) => ({ case: c.case, pred: c.prediction ?? null, ref: c.reference, region: null }));
    compare(ev, pythonReference({ pairs, labels: [1, 2], binarize: false }));
    const hd = ev.summary.find((s) => s.metric === 'hd95' && s.label === 2)!;
    assert.equal(hd.nPosInf, 2); // the missed label and the missing case are counted, not averaged
  });

  test('probability maps pair by case id and give AUC per label (channel c = label c)', async () => {
    const dir = join(tmp, 'probs');
    mkdirSync(dir, { recursive: true });
    for (const id of [ids[0]!, ids[1]!]) {
      const p = await readVolume(join(tmp, 'preds', `${id}.nii.gz`));
      const n = p.data.length;
      const probs = new Float32Array(3 * n);
      // confident where the (shifted) prediction says so, with a smooth ramp along x so scores are not all tied
      for (let i = 0; i < n; i++) {
        const x = i % p.size[0];
        for (let c = 0; c < 3; c++) probs[c * n + i] = (p.data[i] === c ? 0.7 : 0.15) + 0.001 * x * (c === 1 ? 1 : -1);
      }
      await writeVolume(join(dir, `${id}_probs.nii.gz`), { ...p, channels: 3, data: probs });
    }
    const pairing = { probabilities: /^(hippocampus_\d+)_probs/ };
    const refs = join(tmp, 'refs2');
    mkdirSync(refs, { recursive: true });
    for (const id of [ids[0]!, ids[1]!]) await writeVolume(join(refs, `${id}.nii.gz`), await readVolume(join(tmp, 'refs', `${id}_0000.nii.gz`)));
    const ev = await evaluateFolder({ predictions: join(tmp, 'preds'), references: refs, probabilities: dir, pairing, labels: [1, 2], distances: false });
    assert.deepEqual(
      ev.cases.map((c) => c.probabilities),
      [join(dir, `${ids[0]}_probs.nii.gz`), join(dir, `${ids[1]}_probs.nii.gz`)],
    );
    const pairs = ev.cases.map((c) => ({ case: c.case, pred: c.prediction, ref: c.reference, region: null, probs: c.probabilities }));
    const ref = pythonReference({ pairs, labels: [1, 2], binarize: false });
    assert.ok(
      ref.every((r) => typeof r.auc === 'number' && r.auc > 0.5),
      'reference AUCs computed',
    );
    for (const r of ref) r.hd95 = 'NaN'; // distances: false
    compare(ev, ref);
    assert.ok(
      ev.evaluations.every((e) => e.classes.every((c) => c.reliability && Number.isFinite(c.ece))),
      'calibration per class',
    );
  });

  test('mismatched geometry is a BAD_GEOMETRY error naming both files', async () => {
    const dir = join(tmp, 'badpreds');
    mkdirSync(dir, { recursive: true });
    const v = await readVolume(join(tmp, 'refs', `${ids[0]}_0000.nii.gz`));
    await writeVolume(join(dir, `${ids[0]}.nii.gz`), { ...v, spacing: [1, 1, 1] });
    await assert.rejects(evaluateFolder({ predictions: dir, references: join(tmp, 'refs'), labels: [1] }), (e: unknown) => {
      assert.ok(e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY', String(e));
      assert.match(e.message, /spacing/);
      assert.ok(e.message.includes(join(dir, `${ids[0]}.nii.gz`)) && e.message.includes(`${ids[0]}_0000.nii.gz`), e.message);
      return true;
    });
    await writeVolume(join(dir, `${ids[0]}.nii.gz`), { ...v, origin: [v.origin[0] + 3, v.origin[1], v.origin[2]] });
    await assert.rejects(evaluateFolder({ predictions: dir, references: join(tmp, 'refs'), labels: [1] }), /origin/);
  });

  test('a missing folder is NOT_FOUND with the path', async () => {
    await assert.rejects(evaluateFolder({ predictions: join(tmp, 'nope'), references: join(tmp, 'refs') }), (e: unknown) => {
      assert.ok(e instanceof MedsegIoError && e.code === 'NOT_FOUND', String(e));
      assert.ok(e.message.includes(join(tmp, 'nope')), e.message);
      return true;
    });
  });
});
