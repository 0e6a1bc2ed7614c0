/**
 * The RDP accountant against published values and closed forms: Opacus's
 * RDP accountant gives epsilon 7.32911117143 for sigma 1.5, q 0.04, 2250
 * steps, delta 1e-5 (its accountants test); without subsampling the RDP is
 * the Gaussian mechanism's alpha / (2 sigma^2); log erfc against SciPy; the
 * integer-order and fractional-order series agree where they meet; the
 * noise multiplier found for a target epsilon spends no more than it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPythonJson } from '../testing/python.ts';
import {
  DEFAULT_ORDERS,
  epsilonFromRdp,
  logErfc,
  noiseMultiplierFor,
  PrivacyAccountingError,
  RdpAccountant,
  sampledGaussianRdp,
} from './privacy-accountant.ts';

test('epsilon of a standard DP-SGD setting equals the published RDP accountant value', () => {
  const acc = new RdpAccountant();
  acc.step(0.04, 1.5, Math.floor(90 / 0.04));
  const spent = acc.spent(1e-5);
  assert.ok(Math.abs(spent.epsilon - 7.32911117143) < 1e-6, `epsilon ${spent.epsilon} (order ${spent.order})`);
  // Steps one at a time compose to the same.
  const byStep = new RdpAccountant();
  for (let i = 0; i < 2250; i++) byStep.step(0.04, 1.5);
  assert.ok(Math.abs(byStep.spent(1e-5).epsilon - spent.epsilon) < 1e-9);
  assert.equal(byStep.steps, 2250);
});

test('without subsampling the RDP is alpha / (2 sigma^2) per step, and epsilon follows in closed form', () => {
  const orders = [1.5, 2, 8, 32];
  const rdp = sampledGaussianRdp(1, 2, 10, orders);
  orders.forEach((a, k) => assert.ok(Math.abs(rdp[k]! - (10 * a) / 8) < 1e-12));
  const { epsilon, order } = epsilonFromRdp(rdp, 1e-5, orders);
  const expected = Math.min(...orders.map((a) => (10 * a) / 8 - (Math.log(1e-5) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a)));
  assert.ok(Math.abs(epsilon - expected) < 1e-12 && orders.includes(order));
  assert.deepEqual(sampledGaussianRdp(0, 1, 100, orders), [0, 0, 0, 0], 'no example sampled: no privacy spent');
});

test('log erfc equals SciPy from the far negative to the far positive tail', () => {
  const xs = [-6, -2.5, -1, -0.3, 0, 1e-3, 0.4, 1, 2, 2.49, 2.51, 3, 5, 10, 27.5, 40];
  const ref = runPythonJson<number[]>(
    [
      '-c',
      'import json, sys, math; from scipy import special; xs = json.load(sys.stdin); print(json.dumps([math.log(2) + float(special.log_ndtr(-x * 2 ** 0.5)) for x in xs]))',
    ],
    xs,
  );
  xs.forEach((x, i) => assert.ok(Math.abs(logErfc(x) - ref[i]!) <= 1e-12 * Math.max(1, Math.abs(ref[i]!)), `x ${x}: ${logErfc(x)} vs SciPy ${ref[i]}`));
});

test('the fractional-order series meets the integer-order sum at neighbouring orders', () => {
  for (const [q, sigma] of [
    [0.01, 1.1],
    [0.1, 0.8],
    [0.5, 3],
  ] as const) {
    const [below, at, above] = sampledGaussianRdp(q, sigma, 1, [2.999999, 3, 3.000001]);
    assert.ok(Math.abs(below! - at!) < 1e-5 * at! && Math.abs(above! - at!) < 1e-5 * at!, `q ${q} sigma ${sigma}: ${below} ${at} ${above}`);
  }
  // More noise, less privacy spent; more steps, more.
  const r = (q: number, s: number, t: number) => epsilonFromRdp(sampledGaussianRdp(q, s, t), 1e-5).epsilon;
  assert.ok(r(0.02, 1.2, 1000) < r(0.02, 1.0, 1000) && r(0.02, 1.0, 1000) < r(0.02, 1.0, 2000));
});

test('the noise multiplier for a target epsilon reaches it with the least noise', () => {
  const sigma = noiseMultiplierFor(8, 1e-5, 0.04, 2250, 1e-4);
  const eps = (s: number) => epsilonFromRdp(sampledGaussianRdp(0.04, s, 2250), 1e-5).epsilon;
  assert.ok(eps(sigma) <= 8 && eps(sigma - 2e-4) > 8, `sigma ${sigma}: epsilon ${eps(sigma)}`);
  // The published noise multiplier for this setting lies within the search's tolerance of its own.
  assert.ok(Math.abs(sigma - 1.425307617) < 0.01, `sigma ${sigma}`);
  assert.throws(() => sampledGaussianRdp(1.5, 1, 1), PrivacyAccountingError);
  assert.throws(() => epsilonFromRdp([1], 0, [2]), PrivacyAccountingError);
  assert.ok(DEFAULT_ORDERS.length === 151 && DEFAULT_ORDERS[0] === 1.1 && DEFAULT_ORDERS.at(-1) === 63);
});
