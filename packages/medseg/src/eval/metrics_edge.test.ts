/**
 * Edge cases of the metrics, one test each, with expected values derived by
 * hand from the definitions in metrics.ts (the real-data agreement with SciPy
 * is in metrics.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Vec3 } from '../io/volume.ts';
import { evaluateCase, type ClassMetrics, type EvaluateOptions } from './metrics.ts';
import { MetricsError, type MetricsErrorCode } from './metrics_errors.ts';
import { jsonSafeRow, toRows } from './metrics_rows.ts';
import { recordsToCsv } from '../util/csv.ts';
import { aucRoc, reliability } from './probabilistic.ts';
import { surfaceOf } from './surface.ts';

const SIZE: Vec3 = [8, 7, 6];
const N = SIZE[0] * SIZE[1] * SIZE[2];
const idx = (x: number, y: number, z: number) => x + SIZE[0] * (y + SIZE[1] * z);
function box(lo: Vec3, hi: Vec3, label = 1): Uint8Array {
  const m = new Uint8Array(N);
  for (let z = lo[2]; z < hi[2]; z++) for (let y = lo[1]; y < hi[1]; y++) for (let x = lo[0]; x < hi[0]; x++) m[idx(x, y, z)] = label;
  return m;
}
const empty = () => new Uint8Array(N);
function one(pred: Uint8Array, ref: Uint8Array, opts: Partial<EvaluateOptions> = {}): ClassMetrics {
  const ev = evaluateCase(pred, ref, { size: SIZE, spacing: [0.7, 0.7, 3], labels: [1], ...opts });
  assert.equal(ev.classes.length, 1);
  return ev.classes[0]!;
}
const isNaN = (v: number | undefined, what: string) => assert.ok(Number.isNaN(v), `${what} should be NaN, got ${v}`);
function throwsCode(f: () => unknown, code: MetricsErrorCode): void {
  assert.throws(f, (e: unknown) => e instanceof MetricsError && e.code === code);
}

test('both empty: Dice/IoU/F1 NaN by default, 1 with emptyOverlap "one"; distances and surface Dice NaN', () => {
  const m = one(empty(), empty());
  for (const k of ['dice', 'iou', 'f1', 'sensitivity', 'precision', 'hausdorff', 'hd95', 'assd', 'surfaceDice', 'relVolumeDiff'] as const) isNaN(m[k], k);
  assert.equal(m.specificity, 1);
  assert.equal(m.accuracy, 1);
  assert.equal(m.volumeDiff, 0);
  const o = one(empty(), empty(), { emptyOverlap: 'one' });
  assert.deepEqual([o.dice, o.iou, o.f1], [1, 1, 1]);
  isNaN(o.hausdorff, 'hausdorff with emptyOverlap one'); // the option is about overlap only
});

test('both empty with automatic labels: no label is present, so no rows', () => {
  assert.deepEqual(evaluateCase(empty(), empty(), { size: SIZE, spacing: [1, 1, 1] }).classes, []);
});

test('empty reference, non-empty prediction: Dice 0, sensitivity NaN, distances Infinity, surface Dice 0', () => {
  const m = one(box([1, 1, 1], [3, 3, 3]), empty());
  assert.deepEqual([m.dice, m.iou, m.precision, m.surfaceDice], [0, 0, 0, 0]);
  isNaN(m.sensitivity, 'sensitivity');
  assert.deepEqual([m.hausdorff, m.hd95, m.assd, m.relVolumeDiff], [Infinity, Infinity, Infinity, Infinity]);
});

test('empty prediction, non-empty reference: Dice 0, sensitivity 0, precision NaN, distances Infinity, relVolumeDiff -1', () => {
  const m = one(empty(), box([1, 1, 1], [3, 3, 3]));
  assert.deepEqual([m.dice, m.sensitivity, m.surfaceDice, m.relVolumeDiff], [0, 0, 0, -1]);
  isNaN(m.precision, 'precision');
  assert.deepEqual([m.hausdorff, m.hd95, m.assd], [Infinity, Infinity, Infinity]);
});

test('reference covers the whole region: specificity NaN (no negatives), AUC NaN (one class)', () => {
  const region = box([2, 2, 2], [5, 5, 5]);
  const probs = new Float32Array(N).fill(0.8);
  const m = one(box([0, 0, 0], [8, 7, 6]), box([0, 0, 0], [8, 7, 6]), { regionMask: region, probabilities: probs });
  isNaN(m.specificity, 'specificity');
  assert.equal(m.tp, 27);
  assert.equal(m.dice, 1);
  isNaN(m.auc, 'auc');
  // top-label: every voxel predicted positive with confidence 0.8 and correct
  assert.ok(Math.abs(m.ece! - 0.2) < 1e-6, `ece ${m.ece}`);
});

test('empty region: every metric undefined', () => {
  const m = one(box([1, 1, 1], [3, 3, 3]), box([1, 1, 1], [4, 4, 4]), { regionMask: empty(), probabilities: new Float64Array(N) });
  for (const k of ['dice', 'sensitivity', 'specificity', 'precision', 'accuracy', 'hausdorff', 'surfaceDice', 'auc', 'ece'] as const) isNaN(m[k], k);
});

test('a region cut gives the structure a surface along the cut (outside voxels are not foreground)', () => {
  // a 4-thick slab along z, cut by the region to z < 2: both masks become 2-thick
  const region = box([0, 0, 0], [8, 7, 2]);
  const ref = box([1, 1, 0], [7, 6, 4]);
  const pred = box([1, 1, 0], [7, 6, 4]);
  const m = one(pred, ref, { regionMask: region });
  assert.deepEqual([m.tp, m.fp, m.fn, m.dice, m.hausdorff, m.surfaceDice], [6 * 5 * 2, 0, 0, 1, 0, 1]);
});

test('identical masks: Dice 1, distances 0, surface Dice 1; a one-voxel shift along z gives HD = HD95 = spacing z', () => {
  const a = box([2, 2, 1], [6, 5, 4]);
  const m = one(a, a);
  assert.deepEqual([m.dice, m.hausdorff, m.hd95, m.assd, m.surfaceDice], [1, 0, 0, 0, 1]);
  const s = one(box([2, 2, 2], [6, 5, 5]), a, { tau: 2.9 });
  // 4x3 faces that no longer coincide are 3 mm from the other surface; all others coincide
  assert.equal(s.hausdorff, 3);
  assert.equal(s.hd95, 3);
  assert.ok(s.surfaceDice < 1 && s.surfaceDice > 0);
});

test('volumes use the spacing: mm^3 in 3D, mm^2 in 2D (nz = 1 is not a dimension)', () => {
  const m = one(box([0, 0, 0], [2, 5, 1]), box([0, 0, 0], [1, 5, 1]));
  assert.ok(Math.abs(m.predVolume - 10 * 0.7 * 0.7 * 3) < 1e-12);
  assert.ok(Math.abs(m.relVolumeDiff - 1) < 1e-12);
  const a = new Uint8Array(12).fill(1);
  const ev = evaluateCase(a, a, { size: [4, 3, 1], spacing: [0.5, 2, 7], labels: [1] });
  assert.equal(ev.classes[0]!.predVolume, 12);
});

test('surfaces: 4-connected in 2D, 6-connected in 3D, image border counts as background', () => {
  const sq = new Uint8Array(9).fill(1);
  assert.deepEqual([...surfaceOf(sq, [3, 3, 1])], [1, 1, 1, 1, 0, 1, 1, 1, 1]);
  const cube = new Uint8Array(125);
  for (let z = 1; z < 4; z++) for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) cube[x + 5 * (y + 5 * z)] = 1;
  const s = surfaceOf(cube, [5, 5, 5]);
  assert.equal(
    s.reduce((a, b) => a + b, 0),
    26,
  );
  assert.equal(s[2 + 5 * (2 + 5 * 2)], 0);
  // a full 3x3x3 image: only the centre is interior
  assert.equal(
    surfaceOf(new Uint8Array(27).fill(1), [3, 3, 3]).reduce((a, b) => a + b, 0),
    26,
  );
});

test('several labels: each label against the rest, labels found automatically', () => {
  const ref = box([0, 0, 0], [4, 7, 6], 1);
  ref.set(box([4, 0, 0], [8, 7, 6], 2).map((v, i) => v || ref[i]!));
  const pred = new Uint8Array(ref);
  for (let i = 0; i < N; i++) if (pred[i] === 2 && i % 8 === 4) pred[i] = 1; // x = 4 column goes to label 1
  const ev = evaluateCase(pred, ref, { size: SIZE, spacing: [1, 1, 1] });
  assert.deepEqual(
    ev.classes.map((c) => c.label),
    [1, 2],
  );
  const [l1, l2] = ev.classes;
  assert.deepEqual([l1!.tp, l1!.fp, l1!.fn], [4 * 42, 42, 0]);
  assert.deepEqual([l2!.tp, l2!.fp, l2!.fn], [3 * 42, 0, 42]);
});

test('AUC: exact with ties (hand-counted Mann–Whitney), NaN with one class', () => {
  // pos {0.9, 0.5, 0.5}, neg {0.5, 0.1}: pairs above = 0.9>0.5,0.9>0.1,0.5>0.1,0.5>0.1 = 4, ties 0.5=0.5 twice -> (4 + 1) / 6
  assert.equal(aucRoc({ pos: Float64Array.of(0.5, 0.9, 0.5), neg: Float64Array.of(0.5, 0.1) }), 5 / 6);
  assert.equal(aucRoc({ pos: Float64Array.of(1, 1), neg: Float64Array.of(1) }), 0.5);
  isNaN(aucRoc({ pos: Float64Array.of(0.3), neg: new Float64Array(0) }), 'auc without negatives');
});

test('ECE and reliability: hand-computed bins; top-label and foreground modes', () => {
  // foreground mode, 2 bins: bin0 {0.2 neg, 0.4 pos}: conf 0.3 acc 0.5; bin1 {0.6 neg, 1.0 pos}: conf 0.8 acc 0.5
  const r = reliability({ pos: Float64Array.of(0.4, 1.0), neg: Float64Array.of(0.2, 0.6) }, 2, 'foreground');
  assert.deepEqual(r.count, [2, 2]);
  assert.ok(Math.abs(r.confidence[0]! - 0.3) < 1e-12 && Math.abs(r.confidence[1]! - 0.8) < 1e-12);
  assert.deepEqual(r.accuracy, [0.5, 0.5]);
  assert.ok(Math.abs(r.ece - (0.5 * 0.2 + 0.5 * 0.3)) < 1e-12);
  // top-label: confidences 0.6(wrong: 0.4 pos predicted neg), 1.0(right), 0.8(right), 0.6(wrong: 0.6 neg predicted pos)
  const t = reliability({ pos: Float64Array.of(0.4, 1.0), neg: Float64Array.of(0.2, 0.6) }, 4, 'top-label');
  assert.deepEqual(t.count, [0, 0, 2, 2]);
  isNaN(t.confidence[0], 'empty bin confidence');
  assert.deepEqual(t.accuracy.slice(2), [0, 1]);
  assert.ok(Math.abs(t.ece - (0.5 * 0.6 + 0.5 * 0.1)) < 1e-12);
  isNaN(reliability({ pos: new Float64Array(0), neg: new Float64Array(0) }).ece, 'ece of nothing');
});

test('bad input gives typed MetricsErrors', () => {
  const a = box([1, 1, 1], [3, 3, 3]);
  throwsCode(() => evaluateCase(a, new Uint8Array(N - 1), { size: SIZE, spacing: [1, 1, 1] }), 'BAD_SHAPE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE }), 'BAD_SPACING');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 0, 1] }), 'BAD_SPACING');
  throwsCode(() => evaluateCase(a, a, { spacing: [1, 1, 1] }), 'BAD_SHAPE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], tau: -1 }), 'BAD_OPTION');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], regionMask: new Uint8Array(3) }), 'BAD_SHAPE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], probabilities: new Float32Array(N).fill(NaN) }), 'BAD_VALUE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], probabilities: new Float32Array(N).fill(1.5) }), 'BAD_VALUE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], labels: [1, 2], probabilities: new Float32Array(N) }), 'BAD_SHAPE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], labels: [5], probabilities: new Float32Array(2 * N) }), 'BAD_SHAPE');
  throwsCode(() => evaluateCase(a, a, { size: SIZE, spacing: [1, 1, 1], calibrationBins: 0, probabilities: new Float32Array(N) }), 'BAD_OPTION');
  const noisy = Float32Array.from({ length: 2000 }, (_, i) => i + 0.5); // a probability map passed as labels
  throwsCode(() => evaluateCase(noisy, noisy, { size: [20, 20, 5], spacing: [1, 1, 1] }), 'BAD_OPTION');
  const v = (spacing: Vec3) => ({ data: a, size: SIZE, spacing });
  throwsCode(() => evaluateCase(v([1, 1, 1]), v([1, 1, 2])), 'BAD_SPACING');
  throwsCode(() => evaluateCase({ data: a, size: SIZE, channels: 2 }, a, { spacing: [1, 1, 1] }), 'BAD_SHAPE');
});

test('rows: one per case and label, CSV and JSON keep NaN / Infinity readable', () => {
  const ev = evaluateCase(box([1, 1, 1], [3, 3, 3]), empty(), { case: 'c,1', size: SIZE, spacing: [1, 1, 1], labels: [1, 2] });
  const rows = toRows(ev);
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.case, 'c,1');
  assert.deepEqual([rows[0]!.label, rows[1]!.label], [1, 2]);
  assert.equal(rows[0]!.hausdorff, Infinity);
  assert.ok(!('reliability' in rows[0]!));
  const csv = recordsToCsv(rows).split('\n');
  assert.ok(csv[0]!.startsWith('case,label,'));
  assert.ok(csv[1]!.startsWith('"c,1",1,'));
  assert.ok(csv[1]!.includes('Infinity') && csv[2]!.includes('NaN'));
  assert.equal(JSON.parse(JSON.stringify(jsonSafeRow(rows[0]!))).hausdorff, 'Infinity');
});
