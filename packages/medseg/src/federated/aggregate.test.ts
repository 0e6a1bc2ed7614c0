/**
 * Aggregation of the sites' weights: FedAvg is the example-weighted mean
 * (against NumPy's average); FedBN keeps the normalisation tensors, found in
 * a real U-Net's module tree, at their global values; bad updates (missing,
 * extra or misshaped tensors, NaN, no cases) are refused with the site named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createNetwork } from '../models/registry.ts';
import { smallConfig } from '../testing/models.ts';
import { runPythonJson } from '../testing/python.ts';
import { seededRandom } from '../util/random.ts';
import { aggregate, AggregationError, normalisationTensorNames } from './aggregate.ts';

const rnd = seededRandom(9);
const vec = (n: number) => Float32Array.from({ length: n }, () => rnd() * 2 - 1);

test('FedAvg weighs each site by its cases, as numpy.average', () => {
  const global = new Map([
    ['a', vec(5)],
    ['b', vec(3)],
  ]);
  const updates = [10, 30, 5].map((examples, k) => ({ site: `s${k}`, examples, weights: new Map([...global].map(([n, g]) => [n, vec(g.length)])) }));
  const out = aggregate(global, updates);
  for (const name of ['a', 'b']) {
    const ref = runPythonJson<number[]>(
      [
        '-c',
        'import json, sys, numpy as np; d = json.load(sys.stdin); print(json.dumps(np.average(np.array(d["w"], dtype=np.float64), axis=0, weights=d["n"]).tolist()))',
      ],
      { w: updates.map((u) => Array.from(u.weights.get(name)!)), n: updates.map((u) => u.examples) },
    );
    out.get(name)!.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-6, `${name}[${i}] ${v} vs ${ref[i]}`));
  }
});

test("FedBN keeps every normalisation layer's tensors of a U-Net at the global values", () => {
  const net = createNetwork(smallConfig('unet', 2, { features: [8, 16] }));
  try {
    const local = normalisationTensorNames(net);
    const names = net.namedParameters().map(([n]) => n);
    assert.ok(local.size > 0 && [...local].every((n) => /norm/.test(n)), `norm tensors: ${[...local].slice(0, 4).join(', ')}`);
    assert.ok(
      names.some((n) => !local.has(n) && /conv/.test(n)),
      'convolutions are shared',
    );
    const global = new Map(net.namedParameters().map(([n, p]) => [n, p.toFloat32Array()]));
    const updates = [1, 2].map((examples, k) => ({ site: `s${k}`, examples, weights: new Map([...global].map(([n, g]) => [n, vec(g.length)])) }));
    const out = aggregate(global, updates, local);
    for (const [n, g] of global) {
      if (local.has(n)) assert.deepEqual(out.get(n), g, `${n} stays`);
      else assert.notDeepEqual(out.get(n), g, `${n} is averaged`);
    }
  } finally {
    net.dispose();
  }
});

test('bad updates are refused, naming the site', () => {
  const global = new Map([['a', vec(4)]]);
  const ok = { site: 'good', examples: 3, weights: new Map([['a', vec(4)]]) };
  const cases: [object, RegExp][] = [
    [{ site: 'x', examples: 3, weights: new Map() }, /site x sent no tensor a/],
    [{ site: 'x', examples: 3, weights: new Map([['a', vec(5)]]) }, /site x: a has 5 values/],
    [
      {
        site: 'x',
        examples: 3,
        weights: new Map([
          ['a', vec(4)],
          ['z', vec(1)],
        ]),
      },
      /site x sent z/,
    ],
    [{ site: 'x', examples: 0, weights: new Map([['a', vec(4)]]) }, /site x: the number of training cases/],
    [{ site: 'x', examples: 1, weights: new Map([['a', Float32Array.of(Number.NaN, 0, 0, 0)]]) }, /not finite/],
  ];
  for (const [bad, message] of cases)
    assert.throws(
      () => aggregate(global, [ok, bad as typeof ok]),
      (e) => e instanceof AggregationError && message.test(e.message),
    );
  assert.throws(() => aggregate(global, []), AggregationError);
});
