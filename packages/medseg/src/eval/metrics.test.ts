/**
 * The metrics against an independent SciPy/NumPy reference (metrics_ref.py) on
 * real masks: MSD hippocampus label maps (two labels) with perturbed copies as
 * "predictions", with native and anisotropic spacing, and DRIVE's first vs
 * second observer vessel masks inside the field of view. One python process
 * computes every reference value.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readImage2d } from '../io/image2d.ts';
import { readNifti } from '../io/nifti.ts';
import type { Vec3, Volume } from '../io/volume.ts';
import { dataPath } from '../testing/data.ts';
import { squaredEdt } from './distance_edt.ts';
import { evaluateCase, type CaseEvaluation, type EvaluateOptions } from './metrics.ts';
import { dtypeOf, refNumber, scipyReference, writeRaw } from '../testing/metrics-reference.ts';
import { seededRandom } from '../util/random.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-metrics-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const OVERLAP = ['tp', 'fp', 'fn', 'tn', 'dice', 'iou', 'sensitivity', 'specificity', 'precision', 'accuracy', 'predVolume', 'refVolume'];
const DISTANCE = ['hausdorff', 'hd95', 'assd'];

interface Job {
  name: string;
  pred: Uint8Array;
  ref: Uint8Array;
  size: Vec3;
  opts: EvaluateOptions & { spacing: Vec3; tau: number; labels: number[] };
  /** How the reference reads the masks; default raw bytes written from pred/ref. */
  refSpec?: Record<string, unknown>;
}
type RefMetrics = Record<string, unknown>;

const jobs: Job[] = [];
let refs: Record<string, RefMetrics>[] = [];
const edtJobs: { feature: Uint8Array; size: Vec3; spacing: Vec3; out: string }[] = [];

/** out(x, y, z) = in(x - d0, y - d1, z - d2), 0 outside. */
function shift(v: Volume, d: Vec3): Uint8Array {
  const [nx, ny, nz] = v.size;
  const out = new Uint8Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const [sx, sy, sz] = [x - d[0], y - d[1], z - d[2]];
        if (sx >= 0 && sy >= 0 && sz >= 0 && sx < nx && sy < ny && sz < nz) out[x + nx * (y + ny * z)] = v.data[sx + nx * (sy + ny * sz)]!;
      }
  return out;
}

/** `other` cropped / zero-padded onto the grid of `v` (another patient as a "prediction"). */
function transplant(other: Volume, size: Vec3): Uint8Array {
  const [nx, ny, nz] = size;
  const out = new Uint8Array(nx * ny * nz);
  const [ox, oy, oz] = other.size;
  for (let z = 0; z < Math.min(nz, oz); z++)
    for (let y = 0; y < Math.min(ny, oy); y++) for (let x = 0; x < Math.min(nx, ox); x++) out[x + nx * (y + ny * z)] = other.data[x + ox * (y + oy * z)]!;
  return out;
}

/** Softmax of noisy one-hot logits, quantized to 1/64 so that many scores tie. */
function probabilities(ref: Uint8Array, classes: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  const n = ref.length;
  const out = new Float32Array(n * classes);
  const logit = new Float64Array(classes);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      logit[c] = Math.exp((ref[i] === c ? 1.8 : 0) + 1.5 * (r() - 0.5) * 2);
      sum += logit[c]!;
    }
    for (let c = 0; c < classes; c++) out[c * n + i] = Math.round((64 * logit[c]!) / sum) / 64;
  }
  return out;
}

before(async () => {
  const dir = dataPath('msd-hippocampus', 'labels');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.nii.gz'))
    .sort()
    .slice(0, 6);
  const vols = await Promise.all(files.map((f) => readNifti(join(dir, f))));
  vols.forEach((v, k) => {
    const ref = Uint8Array.from(v.data);
    // Shift and punch holes near the structure: holes add inner surfaces.
    const r = seededRandom(k + 1);
    const shifted = shift(v, [1, k % 2 ? -1 : 0, -1]);
    for (let i = 0; i < shifted.length; i++) if (shifted[i] && r() < 0.04) shifted[i] = r() < 0.5 ? 0 : 3 - shifted[i]!;
    const name = files[k]!;
    jobs.push({
      name: `${name} shifted+holes, spacing ${v.spacing.join('x')}`,
      pred: shifted,
      ref,
      size: v.size,
      opts: { spacing: v.spacing, tau: 1.5, labels: [1, 2] },
    });
    jobs.push({
      name: `${name} shifted+holes, spacing 0.7x0.7x3`,
      pred: shifted,
      ref,
      size: v.size,
      opts: { spacing: [0.7, 0.7, 3.0], tau: 2.2, labels: [1, 2] },
    });
    const other = transplant(vols[(k + 1) % vols.length]!, v.size);
    jobs.push({
      name: `${name} vs another patient, spacing 1.2x0.9x2.5, with probabilities`,
      pred: other,
      ref,
      size: v.size,
      opts: { spacing: [1.2, 0.9, 2.5], tau: 1.0, labels: [1, 2], probabilities: probabilities(ref, 3, 100 + k), calibrationBins: 10 + k },
    });
  });
  // A region mask on a 3D case: a slab of the grid.
  const v = vols[0]!;
  const region = new Uint8Array(v.data.length);
  for (let i = 0; i < region.length; i++) region[i] = Math.floor(i / (v.size[0] * v.size[1])) % v.size[2] < 20 ? 1 : 0;
  jobs.push({
    name: 'hippocampus with a region mask (slab z < 20)',
    pred: jobs[0]!.pred,
    ref: jobs[0]!.ref,
    size: v.size,
    opts: {
      spacing: [0.8, 1.1, 1.7],
      tau: 1.3,
      labels: [1, 2],
      regionMask: region,
      probabilities: probabilities(jobs[0]!.ref, 3, 7),
      calibrationMode: 'foreground',
    },
  });

  // DRIVE: 1st observer = reference, 2nd observer = "prediction", FOV as region;
  // inverted green channel of the fundus photo as a (real, tie-heavy) vessel score.
  for (let k = 1; k <= 20; k++) {
    const id = String(k).padStart(2, '0');
    const paths = {
      ref: dataPath('drive', 'testing', '1st_manual', `${id}_manual1.gif`),
      pred: dataPath('drive', 'testing', '2nd_manual', `${id}_manual2.gif`),
      region: dataPath('drive', 'testing', 'mask', `${id}_test_mask.gif`),
    };
    const [ref, pred, fov] = await Promise.all(
      [paths.ref, paths.pred, paths.region].map(async (p) => {
        const img = await readImage2d(p, { palette: 'rgb' });
        const n = img.size[0] * img.size[1];
        return { size: img.size, mask: Uint8Array.from({ length: n }, (_, i) => (img.data[i]! > 127 ? 1 : 0)) };
      }),
    );
    const opts: Job['opts'] = { spacing: k % 2 ? [1, 1, 1] : [0.6, 0.45, 1], tau: k % 3 ? 2.0 : 1.1, labels: [1], regionMask: fov!.mask };
    if (k <= 4) {
      const photo = await readImage2d(dataPath('drive', 'testing', 'images', `${id}_test.tif`));
      const n = photo.size[0] * photo.size[1];
      opts.probabilities = Float64Array.from({ length: n }, (_, i) => 1 - photo.data[n + i]! / 255);
    }
    jobs.push({
      name: `DRIVE ${id} 2nd vs 1st observer in FOV, spacing ${opts.spacing.join('x')}`,
      pred: pred!.mask,
      ref: ref!.mask,
      size: ref!.size,
      opts,
      refSpec: { pred: { gif: paths.pred }, ref: { gif: paths.ref }, region: { gif: paths.region } },
    });
  }

  // EDTs: random sparse features on odd grids, anisotropic, 3D, 2D and 1-voxel-thick.
  const r = seededRandom(42);
  for (const [size, spacing, density] of [
    [[37, 29, 23], [0.7, 0.7, 3.0], 0.002],
    [[40, 33, 17], [1.3, 0.4, 2.1], 0.05],
    [[64, 48, 1], [0.5, 1.7, 1], 0.01],
    [[1, 50, 30], [1, 0.9, 1.1], 0.02],
    [[25, 1, 1], [2, 1, 1], 0.1],
  ] as [Vec3, Vec3, number][]) {
    const feature = Uint8Array.from({ length: size[0] * size[1] * size[2] }, () => (r() < density ? 1 : 0));
    edtJobs.push({ feature, size, spacing, out: join(tmp, `edt${edtJobs.length}.f64`) });
  }

  const payload = {
    edts: edtJobs.map((e, i) => ({ feature: writeRaw(join(tmp, `feat${i}.u8`), e.feature), shape: e.size, spacing: e.spacing, out: e.out })),
    cases: jobs.map((j, i) => {
      const p = j.opts.probabilities;
      const probArr = p && (ArrayBuffer.isView(p) ? p : p.data);
      const region = j.opts.regionMask && (ArrayBuffer.isView(j.opts.regionMask) ? j.opts.regionMask : j.opts.regionMask.data);
      return {
        shape: j.size,
        spacing: j.opts.spacing,
        labels: j.opts.labels,
        tau: j.opts.tau,
        bins: j.opts.calibrationBins ?? 15,
        mode: j.opts.calibrationMode ?? 'top-label',
        pred: { raw: writeRaw(join(tmp, `p${i}.u8`), j.pred), dtype: 'uint8' },
        ref: { raw: writeRaw(join(tmp, `r${i}.u8`), j.ref), dtype: 'uint8' },
        ...(region ? { region: { raw: writeRaw(join(tmp, `m${i}.u8`), region), dtype: dtypeOf(region) } } : {}),
        ...(probArr ? { probs: { raw: writeRaw(join(tmp, `q${i}.bin`), probArr), dtype: dtypeOf(probArr), channels: probArr.length / j.pred.length } } : {}),
        ...(j.refSpec ?? {}),
      };
    }),
  };
  refs = scipyReference<{ cases: Record<string, RefMetrics>[] }>('cases', payload).cases;
});

function close(actual: number, expected: number, tol: number, what: string): void {
  if (Number.isNaN(expected) || !Number.isFinite(expected)) {
    assert.ok(Object.is(actual, expected), `${what}: ${actual} vs reference ${expected}`);
    return;
  }
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs reference ${expected} (diff ${actual - expected})`);
}

const worst = { overlap: 0, distance: 0, auc: 0, ece: 0 };
function compare(ev: CaseEvaluation, ref: Record<string, RefMetrics>, name: string): void {
  assert.deepEqual(
    ev.classes.map((c) => String(c.label)),
    Object.keys(ref),
    `${name}: labels`,
  );
  for (const c of ev.classes) {
    const r = ref[String(c.label)]!;
    const rec = c as unknown as Record<string, number>;
    const what = (m: string) => `${name} label ${c.label} ${m}`;
    for (const m of OVERLAP) {
      close(rec[m]!, refNumber(r[m]), 1e-6, what(m));
      if (Number.isFinite(refNumber(r[m]))) worst.overlap = Math.max(worst.overlap, Math.abs(rec[m]! - refNumber(r[m])));
    }
    close(c.f1, c.dice, 0, what('f1 = dice'));
    for (const m of DISTANCE) {
      close(rec[m]!, refNumber(r[m]), 1e-3, what(m));
      if (Number.isFinite(refNumber(r[m]))) worst.distance = Math.max(worst.distance, Math.abs(rec[m]! - refNumber(r[m])));
    }
    close(c.surfaceDice, refNumber(r.surfaceDice), 1e-6, what('surfaceDice'));
    if (r.auc !== undefined) {
      close(c.auc!, refNumber(r.auc), 1e-9, what('auc'));
      close(c.ece!, refNumber(r.ece), 1e-9, what('ece'));
      worst.auc = Math.max(worst.auc, Math.abs(c.auc! - refNumber(r.auc)));
      worst.ece = Math.max(worst.ece, Math.abs(c.ece! - refNumber(r.ece)));
      const rel = r.reliability as { confidence: (number | null)[]; accuracy: (number | null)[]; count: number[] };
      assert.deepEqual(c.reliability!.count, rel.count, what('reliability counts'));
      rel.confidence.forEach((v, b) => close(c.reliability!.confidence[b]!, refNumber(v), 1e-9, what(`bin ${b} confidence`)));
      rel.accuracy.forEach((v, b) => close(c.reliability!.accuracy[b]!, refNumber(v), 1e-9, what(`bin ${b} accuracy`)));
    } else assert.equal(c.auc, undefined);
  }
}

test('hippocampus (shifted, holed, another patient; anisotropic; region; probabilities) matches SciPy/NumPy', () => {
  let n = 0;
  jobs.forEach((j, i) => {
    if (j.name.startsWith('DRIVE')) return;
    compare(evaluateCase({ data: j.pred, size: j.size }, { data: j.ref, size: j.size }, { ...j.opts, case: j.name }), refs[i]!, j.name);
    n++;
  });
  assert.equal(n, 19);
});

test('DRIVE 2nd vs 1st observer inside the FOV (2D, GIF decoded by PIL on the reference side) matches SciPy/NumPy', () => {
  let n = 0;
  jobs.forEach((j, i) => {
    if (!j.name.startsWith('DRIVE')) return;
    const ev = evaluateCase(j.pred, j.ref, { ...j.opts, size: j.size, case: j.name });
    compare(ev, refs[i]!, j.name);
    // sanity on real data: two human observers agree well but not perfectly
    assert.ok(ev.classes[0]!.dice > 0.7 && ev.classes[0]!.dice < 0.9, `${j.name}: dice ${ev.classes[0]!.dice}`);
    n++;
  });
  assert.equal(n, 20);
  console.log(
    `worst |medseg - reference|: overlap ${worst.overlap.toExponential(2)}, distance ${worst.distance.toExponential(2)} mm, auc ${worst.auc.toExponential(2)}, ece ${worst.ece.toExponential(2)}`,
  );
});

test('EDT equals scipy.ndimage.distance_transform_edt(sampling=...) on random features, 3D / 2D / thin grids', () => {
  for (const e of edtJobs) {
    const buf = readFileSync(e.out);
    const ref = new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const d = squaredEdt(e.feature, e.size, e.spacing);
    let maxDiff = 0;
    for (let i = 0; i < ref.length; i++) {
      const a = Math.sqrt(d[i]!);
      maxDiff = Math.max(maxDiff, a === ref[i] ? 0 : Math.abs(a - ref[i]!)); // Infinity (no feature) must match exactly
    }
    assert.ok(maxDiff <= 1e-9, `EDT ${e.size.join('x')} spacing ${e.spacing.join('x')}: max diff ${maxDiff}`);
    // the float32 storage used above F64_MAX_VOXELS: same distances to float32 precision
    const d32 = squaredEdt(e.feature, e.size, e.spacing, new Float32Array(ref.length));
    for (let i = 0; i < ref.length; i++) {
      const a = Math.sqrt(d32[i]!);
      assert.ok(a === ref[i] || Math.abs(a - ref[i]!) <= 1e-6 * ref[i]!, `float32 EDT voxel ${i}: ${a} vs ${ref[i]}`);
    }
  }
});
