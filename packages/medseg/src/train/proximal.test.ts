/**
 * FedProx's proximal term: the gradient added after backward equals
 * autograd's gradient of loss + (mu / 2) ||w - w0||^2 (w0 the weights when
 * the term was made), its value is that penalty, and mu 0 leaves the
 * gradients alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { ProximalTerm } from './proximal.ts';

test('the added gradient is autograd’s gradient of the proximal penalty', () => {
  torch.manualSeed(4);
  const lin = new torch.nn.Linear(6, 3);
  const x = torch.randn([5, 6]);
  const params = lin.parameters();
  const w0 = params.map((p) => p.toFloat32Array());
  const mu = 0.3;
  const prox = new ProximalTerm(params, mu);
  // Local training moves the weights away from the global ones.
  torch.noGrad(() => params.forEach((p) => p.add_(torch.randn(p.shape).mul(0.1))));
  for (const p of params) p.grad = null;
  lin.forward(x).pow(2).mean().backward();
  prox.addGradient();
  const ours = params.map((p) => p.grad!.toFloat32Array());

  for (const p of params) p.grad = null;
  const anchors = w0.map((a, k) => torch.tensor(Array.from(a), params[k]!.shape));
  let total = lin.forward(x).pow(2).mean();
  params.forEach(
    (p, k) =>
      (total = total.add(
        p
          .sub(anchors[k]!)
          .pow(2)
          .sum()
          .mul(mu / 2),
      )),
  );
  total.backward();
  const reference = params.map((p) => p.grad!.toFloat32Array());
  ours.forEach((g, k) => g.forEach((v, i) => assert.ok(Math.abs(v - reference[k]![i]!) < 1e-6, `param ${k}[${i}]: ${v} vs autograd ${reference[k]![i]}`)));

  const w = params.map((p) => p.toFloat32Array());
  const penalty = w.reduce((s, a, k) => s + a.reduce((t, v, i) => t + (mu / 2) * (v - w0[k]![i]!) ** 2, 0), 0);
  assert.ok(Math.abs(prox.value() - penalty) < 1e-6 && penalty > 0, `value ${prox.value()} vs ${penalty}`);
  prox.dispose();

  const zero = new ProximalTerm(params, 0);
  for (const p of params) p.grad = null;
  lin.forward(x).pow(2).mean().backward();
  const before = params.map((p) => p.grad!.toFloat32Array());
  zero.addGradient();
  params.forEach((p, k) => assert.deepEqual(p.grad!.toFloat32Array(), before[k]));
  zero.dispose();
  assert.throws(() => new ProximalTerm(params, -1), RangeError);
});
