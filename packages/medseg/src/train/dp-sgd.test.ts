/**
 * DP-SGD's step on a small 2D U-Net with deep supervision: without noise and
 * with a clipping norm no gradient reaches, it is the plain step (the batch
 * mean of per-example cross-entropy is the batch's cross-entropy); the
 * per-example norms it reports are those of separate backward passes, and
 * clipped gradients move the weights by at most the clipping norm; the
 * noise has the standard deviation sigma * C / B per coordinate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { smallConfig } from '../testing/models.ts';
import { deepSupervisionLoss } from './losses.ts';
import { dpTrainingStep } from './dp-sgd.ts';
import { trainingStep } from './step.ts';

const CE = { name: 'ce', batchDice: false } as const;

function batch(seed: number): { x: Tensor; y: Tensor } {
  const g = new torch.Generator(seed);
  return torch.tidy(() => {
    const x = torch.randn([3, 1, 32, 32], { generator: g });
    return { x: x.keep(), y: x.gt(0.3).long().squeeze(1).keep() };
  });
}

function net(seed: number) {
  torch.manualSeed(seed);
  return createNetwork(smallConfig('unet', 2, { features: [8, 16, 32] })).train();
}

const weights = (n: ReturnType<typeof net>) => n.parameters().map((p) => p.toFloat32Array());

function delta(before: Float32Array[], after: Float32Array[]): Float64Array {
  const out = new Float64Array(before.reduce((s, w) => s + w.length, 0));
  let k = 0;
  before.forEach((w, j) => {
    for (let i = 0; i < w.length; i++) out[k++] = after[j]![i]! - w[i]!;
  });
  return out;
}

test('without noise or clipping, a DP step is the plain step', () => {
  const { x, y } = batch(1);
  const a = net(7);
  const b = net(7);
  try {
    const optA = new torch.optim.SGD(a.parameters(), { lr: 0.1 });
    const optB = new torch.optim.SGD(b.parameters(), { lr: 0.1 });
    const plain = trainingStep(a, optA, x, y, { loss: CE, gradClip: 0 });
    const dp = dpTrainingStep(b, optB, x, y, { loss: CE, gradClip: 0 }, { clipNorm: 1e9, noiseMultiplier: 0 });
    assert.ok(Math.abs(dp.loss - plain) < 1e-5, `loss ${dp.loss} vs ${plain}`);
    assert.equal(dp.clipped, 0);
    const wa = weights(a);
    const wb = weights(b);
    let worst = 0;
    wa.forEach((w, j) => w.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - wb[j]![i]!)))));
    assert.ok(worst < 1e-6, `largest weight difference ${worst}`);
  } finally {
    a.dispose();
    b.dispose();
    x.dispose();
    y.dispose();
  }
});

test('per-example norms are those of separate backward passes; clipped updates stay within the clipping norm', () => {
  const { x, y } = batch(2);
  const n = net(3);
  try {
    const own = [0, 1, 2].map((k) =>
      torch.tidy(() => {
        for (const p of n.parameters()) p.grad = null;
        deepSupervisionLoss(n.forward(x.narrow(0, k, 1)), y.narrow(0, k, 1), CE).backward();
        return Math.sqrt(n.parameters().reduce((s, p) => s + (p.grad ? p.grad.pow(2).sum().item() : 0), 0));
      }),
    );
    const before = weights(n);
    const lr = 1;
    const C = 0.01;
    const r = dpTrainingStep(n, new torch.optim.SGD(n.parameters(), { lr }), x, y, { loss: CE, gradClip: 0 }, { clipNorm: C, noiseMultiplier: 0 });
    r.norms.forEach((v, k) => assert.ok(Math.abs(v - own[k]!) < 1e-4 * own[k]!, `example ${k}: ${v} vs ${own[k]}`));
    assert.equal(r.clipped, 3, 'every example is over a norm of 0.01');
    const d = delta(before, weights(n));
    const norm = Math.sqrt(d.reduce((s, v) => s + v * v, 0)) / lr;
    assert.ok(norm <= C * (1 + 1e-4) && norm > 0.5 * C, `update norm ${norm} for clipping norm ${C}`);
  } finally {
    n.dispose();
    x.dispose();
    y.dispose();
  }
});

test('the noise has standard deviation sigma * C / B per coordinate', () => {
  const { x, y } = batch(3);
  const n = net(5);
  try {
    torch.manualSeed(123);
    const before = weights(n);
    const C = 1e-4;
    const sigma = 500;
    dpTrainingStep(n, new torch.optim.SGD(n.parameters(), { lr: 1 }), x, y, { loss: CE, gradClip: 0 }, { clipNorm: C, noiseMultiplier: sigma });
    const d = delta(before, weights(n));
    const mean = d.reduce((s, v) => s + v, 0) / d.length;
    const sd = Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / (d.length - 1));
    const expected = (sigma * C) / 3;
    assert.ok(d.length > 5000, `${d.length} coordinates`);
    assert.ok(Math.abs(sd - expected) < 0.05 * expected, `noise sd ${sd} vs ${expected}`);
    assert.ok(Math.abs(mean) < (5 * expected) / Math.sqrt(d.length), `noise mean ${mean}`);
    const opt = new torch.optim.SGD(n.parameters(), { lr: 1 });
    assert.throws(() => dpTrainingStep(n, opt, x, y, { loss: CE, gradClip: 0 }, { clipNorm: 0, noiseMultiplier: 1 }), RangeError);
    assert.throws(() => dpTrainingStep(n, opt, x, y, { loss: CE, gradClip: 0 }, { clipNorm: 1, noiseMultiplier: Number.NaN }), RangeError);
  } finally {
    n.dispose();
    x.dispose();
    y.dispose();
  }
});
