/**
 * The drift rules on their own: the binomial tail against SciPy, and the
 * flags a reference with a modality and a validation threshold raises.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { runPythonJson } from '@medseg/medseg/testing/python';
import { binomialTail, caseFlags, windowSummary } from './drift.ts';
import type { InputFingerprint } from './input-fingerprint.ts';
import type { MonitoringReference } from './reference.ts';

test('the one-sided binomial tail equals scipy.stats.binom.sf(k - 1, n, p)', () => {
  const cases: [number, number, number][] = [
    [0, 10, 0.1],
    [2, 3, 0.05],
    [7, 50, 0.1],
    [30, 200, 0.08],
    [1000, 1000, 0.9],
    [3, 2, 0.5],
  ];
  const ref = runPythonJson<number[]>(
    ['-c', 'import json,sys; from scipy.stats import binom; print(json.dumps([float(binom.sf(k-1,n,p)) for k,n,p in json.load(sys.stdin)]))'],
    cases,
  );
  cases.forEach(([k, n, p], i) =>
    assert.ok(Math.abs(binomialTail(k, n, p) - ref[i]!) <= 1e-12 + 1e-9 * ref[i]!, `${k} ${n} ${p}: ${binomialTail(k, n, p)} vs ${ref[i]}`),
  );
});

const range = (min: number, max: number) => ({ min, max });
const stats = (median: number) => ({ mean: median, median, std: 1, min: median, max: median, percentile_00_5: median, percentile_99_5: median });
const ref: MonitoringReference = {
  trainingCases: 10,
  dims: 3,
  spacing: [range(2.5, 3), range(0.7, 0.9), range(0.7, 0.9)],
  extentMm: [range(200, 400), range(300, 400), range(300, 400)],
  intensity: [{ ...stats(40), percentile_00_5: -100, percentile_99_5: 300 }],
  modality: 'CT',
  validation: { threshold: 0.3, flaggedFraction: 0.2, cases: 20 },
};
const input = (o: Partial<InputFingerprint>): InputFingerprint => ({
  spacing: [3, 0.8, 0.8],
  shape: [100, 450, 450],
  intensityRegion: 'predicted-foreground',
  intensity: [stats(50)],
  modality: 'CT',
  tags: {},
  uncertainty: 0.1,
  ...o,
});

test('modality and uncertainty flags: an MR series for a CT model, a score at the validation threshold', () => {
  assert.deepEqual(caseFlags(input({}), ref), []);
  assert.deepEqual(caseFlags(input({ modality: 'MR' }), ref), [{ check: 'modality', reason: 'modality MR; the model expects CT' }]);
  assert.deepEqual(
    caseFlags(input({ uncertainty: 0.3 }), ref).map((f) => f.check),
    ['uncertainty'],
  );
  assert.deepEqual(caseFlags(input({ modality: null, uncertainty: null }), ref), [], 'what the input does not say is not held against it');
  assert.deepEqual(
    caseFlags(input({ shape: [100, 1200, 450] }), ref).map((f) => f.reason),
    ['y extent 960 mm is outside the training range 300-400 mm (x0.5-x2)'],
  );
});

test('the window takes its expected rate from the validation cases when the model has one', () => {
  const recent = [input({ uncertainty: 0.5 }), input({}), input({})].map((i) => ({ input: i, flags: caseFlags(i, ref) }));
  const w = windowSummary(recent, ref, { size: 2, expectedRate: 0.01, alpha: 0.05 });
  assert.equal(w.cases, 2);
  assert.equal(w.flagged, 1);
  assert.equal(w.expectedRateFrom, 'validation');
  assert.equal(w.expectedRate, 0.2);
  assert.ok(Math.abs(w.pValue - (1 - 0.8 ** 2)) < 1e-12);
  assert.equal(w.drift, false);
  assert.deepEqual(w.intensityMedianRatio, [50 / 40]);
  assert.equal(w.meanUncertainty, 0.3);
});
