import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../util/random.ts';
import { runPythonJson } from '../testing/python.ts';
import { calibrationError, fitTemperature, negativeLogLikelihood } from './calibration.ts';

/** Over-confident logits: the true class scaled up, noise scaled up more, so T > 1 helps. */
function overconfident(n: number, K: number, seed: number): { logits: Float32Array; labels: Int32Array } {
  const rnd = seededRandom(seed);
  const logits = new Float32Array(n * K);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = Math.floor(rnd() * K);
    for (let k = 0; k < K; k++) logits[i * K + k] = 4 * (rnd() * 2 - 1) * 2 + (k === labels[i] ? 3 : 0);
  }
  return { logits, labels };
}

const SCIPY = `
import json, sys, numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
d = json.load(sys.stdin)
K = d["K"]; z = np.array(d["logits"], dtype=np.float64).reshape(-1, K); y = np.array(d["labels"])
nll = lambda T: -log_softmax(z / T, axis=1)[np.arange(len(y)), y].mean()
r = minimize_scalar(lambda lt: nll(np.exp(lt)), bounds=(np.log(0.05), np.log(20)), method="bounded", options={"xatol": 1e-9})
p = softmax(z, axis=1); conf = p.max(1); pred = p.argmax(1); B = 15
b = np.minimum((conf * B).astype(int), B - 1)
ece = sum((b == i).sum() / len(y) * abs((pred[b == i] == y[b == i]).mean() - conf[b == i].mean()) for i in range(B) if (b == i).any())
print(json.dumps({"T": float(np.exp(r.x)), "nll1": float(nll(1.0)), "nllT": float(nll(np.exp(r.x))), "ece": float(ece)}))
`;

test('temperature scaling finds the temperature SciPy finds on the same logits; NLL and ECE agree with NumPy', () => {
  const K = 3;
  const { logits, labels } = overconfident(4000, K, 5);
  const ref = runPythonJson<{ T: number; nll1: number; nllT: number; ece: number }>(['-c', SCIPY], {
    K,
    logits: Array.from(logits),
    labels: Array.from(labels),
  });
  const fit = fitTemperature(logits, labels, K);
  assert.ok(Math.abs(fit.temperature / ref.T - 1) < 1e-4, `T ${fit.temperature} vs SciPy ${ref.T}`);
  assert.ok(ref.T > 1.2, `the synthetic logits are over-confident (T ${ref.T})`);
  assert.ok(Math.abs(fit.nllBefore - ref.nll1) < 1e-6 && Math.abs(fit.nllAfter - ref.nllT) < 1e-6);
  assert.ok(fit.nllAfter < fit.nllBefore);
  const before = calibrationError(logits, labels, K);
  assert.ok(Math.abs(before.ece - ref.ece) < 1e-9, `ECE ${before.ece} vs NumPy ${ref.ece}`);
  const after = calibrationError(logits, labels, K, { temperature: fit.temperature });
  assert.ok(after.ece < before.ece, `ECE ${before.ece} -> ${after.ece} after scaling`);
  assert.equal(
    before.bins.reduce((a, b) => a + b.count, 0),
    4000,
  );
  assert.equal(negativeLogLikelihood(logits, labels, K, 1), fit.nllBefore);
});

test('perfectly calibrated confidences have an ECE near zero; bad inputs are refused with a reason', () => {
  // Two classes, logit gap chosen so the confidence is 0.8, and exactly 80 % of voxels right.
  const n = 1000;
  const gap = Math.log(0.8 / 0.2);
  const logits = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    logits[2 * i] = gap;
    labels[i] = i % 5 === 0 ? 1 : 0;
  }
  assert.ok(calibrationError(logits, labels, 2).ece < 1e-6);
  assert.throws(() => calibrationError(new Float32Array(5), new Int32Array(2), 2), /5 values, expected 2 voxels x 2 classes/);
  assert.throws(() => calibrationError(new Float32Array(4), Int32Array.from([0, 2]), 2), /label 2 at voxel 1/);
  assert.throws(() => fitTemperature(new Float32Array(0), new Int32Array(0), 2), /at least one voxel/);
  assert.throws(() => fitTemperature(new Float32Array(2), new Int32Array(2), 1), /at least two classes/);
});
