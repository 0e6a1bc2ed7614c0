/**
 * The entropy calibrator against a NumPy/SciPy computation of the same
 * threshold on the same histograms (entropy_calibration_ref.py, with
 * scipy.stats.entropy for the divergence), the histogram's widening over
 * batches against one built over all values at once, and the range the
 * RangeCollector gives: min-max clipped to the threshold.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runPythonJson } from '../testing/python.ts';
import { Rng } from '../util/random.ts';
import { AbsHistogram, entropyDivergences, entropyThreshold } from './entropy-calibration.ts';
import { RangeCollector } from './quantize.ts';

const REF = fileURLToPath(new URL('./entropy_calibration_ref.py', import.meta.url));

const normals = (rng: Rng, n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());

test('entropy threshold equals NumPy/SciPy on the same histograms (normal with outliers, rectified, sparse)', (t) => {
  const rng = new Rng(5);
  const withOutliers = new AbsHistogram();
  for (let b = 0; b < 3; b++) {
    const x = normals(rng, 20000);
    for (let i = 0; i < 20; i++) x[i] = 25 * (b + 1) * (rng.next() - 0.5);
    withOutliers.add(x);
  }
  const rectified = new AbsHistogram(1024);
  rectified.add(normals(rng, 30000).map((v) => Math.max(0, v) ** 1.5));
  const sparse = new AbsHistogram(512);
  sparse.add(normals(rng, 500).map((v) => Math.round(v * 3) / 3));
  const hists = [withOutliers, rectified, sparse];
  const ref = runPythonJson<{ bins: number[]; divergences: (number | null)[][] }>([REF], { histograms: hists.map((h) => Array.from(h.counts)), levels: 128 });
  hists.forEach((h, k) => {
    const ours = entropyDivergences(h.counts);
    assert.equal(ours.bins, ref.bins[k], `histogram ${k}: chosen bin count`);
    assert.equal(ours.divergences.length, ref.divergences[k]!.length);
    ours.divergences.forEach((d, i) => {
      const r = ref.divergences[k]![i] as number | null;
      if (r === null) assert.equal(d, Infinity);
      else assert.ok(Math.abs(d - r) <= 1e-9 * Math.max(1, Math.abs(r)), `histogram ${k}, i = ${i + 128}: ${d} vs ${r}`);
    });
    assert.equal(entropyThreshold(h.counts, h.max / h.bins), (ref.bins[k]! * h.max) / h.bins);
  });
  const t0 = withOutliers.threshold();
  // The outliers reach 37.5; the threshold stays near the bulk of the normal samples.
  assert.ok(t0 > 2 && t0 < 10 && withOutliers.max > 30, `threshold ${t0} of max ${withOutliers.max}`);
  t.diagnostic(`thresholds: ${hists.map((h) => `${h.threshold().toFixed(3)} of max ${h.max.toFixed(3)}`).join(', ')}`);
});

test('the histogram widened over batches keeps the counts and places them within one new bin of a single-pass histogram', () => {
  const rng = new Rng(9);
  const batches = [1, 2, 4].map((s) => normals(rng, 5000).map((v) => v * s));
  const streamed = new AbsHistogram(256);
  for (const b of batches) streamed.add(b);
  const once = new AbsHistogram(256);
  const all = new Float32Array(batches.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const b of batches) all.set(b, (o += b.length) - b.length);
  once.add(all);
  assert.equal(streamed.max, once.max);
  assert.equal(
    streamed.counts.reduce((a, b) => a + b, 0),
    all.length,
  );
  // Cumulative counts differ only by the values a re-binning moved across one bin edge.
  let ca = 0;
  let cb = 0;
  let worst = 0;
  for (let k = 0; k < 256; k++) {
    ca += streamed.counts[k]!;
    cb += once.counts[k]!;
    worst = Math.max(worst, Math.abs(ca - cb));
  }
  const perBin = Math.max(...once.counts);
  assert.ok(worst <= perBin, `cumulative difference ${worst} > one bin (${perBin})`);
});

test('RangeCollector entropy: the min-max range clipped to [-T, T]', () => {
  const rng = new Rng(3);
  const x = normals(rng, 40000);
  x[0] = 40;
  x[1] = -3;
  const c = new RangeCollector({ kind: 'entropy' });
  c.add(x);
  const h = new AbsHistogram();
  h.add(x);
  const t = h.threshold();
  let lo = Infinity;
  for (const v of x) lo = Math.min(lo, v);
  assert.deepEqual(c.range(), [Math.max(lo, -t), Math.min(40, t)]);
  assert.ok(t < 10);
  const relu = new RangeCollector({ kind: 'entropy' });
  relu.add(Float32Array.from(x, (v) => Math.max(0, v)));
  assert.equal(relu.range()[0], 0);
});
