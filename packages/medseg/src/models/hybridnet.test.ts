/**
 * HybridNet specifics: multi-modal fusion on real multi-channel input (DRIVE's
 * RGB as three modalities; a two-channel 3D hippocampus case), learning to
 * rely on the informative modality when the other is noise, MC dropout at
 * inference, and the named activations / attention maps for explanation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { HybridNet } from './hybridnet.ts';
import { countMACs, lastActivations } from './registry.ts';
import { checkShapesAndGradients, diceScores, diceCe, driveCrop, emCrop, hippocampusCrop, overfit, smallConfig } from '../testing/models.ts';

const { F } = torch;

test('DRIVE RGB as three modalities: cross-attention fusion builds, trains and fits a real 64x64 fundus patch', async () => {
  torch.manualSeed(11);
  const d = await driveCrop(64);
  const cfg = smallConfig('hybridnet', 2, { inChannels: 3, features: [8, 16, 32], dropout: 0, extra: { fusion: 'cross-attention', modalities: 3, depth: 1 } });
  const net = new HybridNet(cfg);
  checkShapesAndGradients(net, [64, 64], 1);
  const r = overfit(net, d.image, d.label, { maxSteps: 300, lr: 1e-2, target: 0.9 });
  console.log(`DRIVE RGB cross-attention: vessel Dice ${r.dice[0]!.toFixed(3)} after ${r.steps} steps`);
  assert.ok(r.dice[0]! > 0.9, `vessel Dice ${r.dice[0]}`);
  torch.tidy(() => {
    torch.noGrad(() => net.forward(d.image));
    const w = lastActivations(net).get('fusion.modalityWeights')!;
    assert.deepEqual(w.shape, [1, 3, 64, 64]);
    assert.ok(w.sum(1).sub(1).abs().max().item() < 1e-5, 'modality weights sum to 1 per pixel');
  });
  net.dispose();
});

test('two-channel 3D hippocampus case (image + its gradient magnitude): early and cross-attention fusion both fit it', async () => {
  torch.manualSeed(12);
  const hip = await hippocampusCrop([16, 24, 16]);
  // Derived channel: central-difference gradient magnitude of the image.
  const twoChannel = torch.tidy(() => {
    const x = hip.image;
    const grad = [2, 3, 4].map((ax) => {
      const n = x.size(ax);
      const fwd = torch.cat([x.narrow(ax, 1, n - 1), x.narrow(ax, n - 1, 1)], ax);
      const bwd = torch.cat([x.narrow(ax, 0, 1), x.narrow(ax, 0, n - 1)], ax);
      return fwd.sub(bwd).mul(0.5).square();
    });
    const mag = grad[0]!.add(grad[1]!).add(grad[2]!).sqrt();
    return torch.cat([x, mag.sub(mag.mean()).div(mag.std())], 1);
  });
  for (const fusion of ['early', 'cross-attention'] as const) {
    const net = new HybridNet(
      smallConfig('hybridnet', 3, { inChannels: 2, numClasses: 3, features: [8, 16, 32], dropout: 0, extra: { fusion, modalities: 2, depth: 1 } }),
    );
    const r = overfit(net, twoChannel, hip.label, { maxSteps: 300, lr: 1e-2 });
    console.log(`hippocampus 2-channel ${fusion}: Dice ${r.dice.map((v) => v.toFixed(3)).join('/')} after ${r.steps} steps`);
    assert.ok(Math.min(...r.dice) > 0.95, `${fusion}: Dice ${r.dice}`);
    net.dispose();
  }
});

test('one informative modality and one noise modality: the fused net learns to use the informative one', async () => {
  torch.manualSeed(13);
  // Training crops from EM slice 0, held-out crop from slice 5. The signal is
  // modality 1 (second), so a bias toward the first modality cannot pass.
  const train = await Promise.all(
    [
      [100, 100],
      [100, 300],
      [300, 100],
      [300, 300],
      [200, 200],
      [40, 400],
    ].map(([y, x]) => emCrop(64, 0, y, x)),
  );
  const held = await emCrop(64, 5, 220, 260);
  const withNoise = (img: Tensor) => torch.cat([torch.randn(img.shape), img], 1);
  const net = new HybridNet(
    smallConfig('hybridnet', 2, {
      inChannels: 2,
      features: [8, 16, 32],
      dropout: 0,
      deepSupervision: false,
      extra: { fusion: 'cross-attention', modalities: 2, depth: 1 },
    }),
  );
  const opt = new torch.optim.Adam(net.parameters(), { lr: 5e-3 });
  net.train();
  for (let step = 0; step < 150; step++) {
    torch.tidy(() => {
      const batch = [0, 1, 2].map((i) => train[(step * 3 + i) % train.length]!);
      const x = withNoise(
        torch.cat(
          batch.map((b) => b.image),
          0,
        ),
      );
      const y = torch.cat(
        batch.map((b) => b.label),
        0,
      );
      opt.zeroGrad();
      diceCe(net.forward(x) as Tensor, y, 2).backward();
      opt.step();
    });
  }
  net.eval();
  const x = torch.tidy(() => withNoise(held.image).requiresGrad_(true).keep());
  const { dice, wSignal, wNoise, gSignal, gNoise } = torch.tidy(() => {
    const logits = net.forward(x) as Tensor;
    const dice = diceScores(logits, held.label, 2)[0]!;
    const w = lastActivations(net).get('fusion.modalityWeights')!;
    const wNoise = w.select(1, 0).mean().item();
    const wSignal = w.select(1, 1).mean().item();
    // Gradient of the membrane logit margin with respect to each input modality.
    logits.select(1, 1).sub(logits.select(1, 0)).sum().backward();
    const g = x.grad!;
    return { dice, wSignal, wNoise, gNoise: g.select(1, 0).abs().mean().item(), gSignal: g.select(1, 1).abs().mean().item() };
  });
  // Chance: calling every pixel membrane gives Dice 2p/(1+p).
  const p = torch.tidy(() => held.label.float().mean().item());
  const chance = (2 * p) / (1 + p);
  console.log(
    `informative vs noise: held-out membrane Dice ${dice.toFixed(3)} (chance ${chance.toFixed(3)}); fusion weight signal ${wSignal.toFixed(3)} vs noise ${wNoise.toFixed(3)}; |dlogit/dx| signal ${gSignal.toExponential(2)} vs noise ${gNoise.toExponential(2)}`,
  );
  assert.ok(dice > chance + 0.25, `held-out Dice ${dice} vs chance ${chance}`);
  assert.ok(wSignal > wNoise, `fusion attention: signal ${wSignal} vs noise ${wNoise}`);
  assert.ok(gSignal > 3 * gNoise, `input gradients: signal ${gSignal} vs noise ${gNoise}`);
  x.dispose();
  opt.dispose();
  net.dispose();
});

test('MC dropout: eval is deterministic, setMcDropout(true) samples, false restores', () => {
  const net = new HybridNet(smallConfig('hybridnet', 2, { dropout: 0.2, extra: { depth: 1 } })).eval();
  torch.tidy(() => {
    const x = torch.randn([1, 1, 32, 32]);
    const run = () => torch.noGrad(() => net.forward(x) as Tensor);
    assert.ok(run().equal(run()));
    assert.ok(net.setMcDropout(true) > 0);
    assert.ok(!run().equal(run()), 'dropout active at inference');
    net.setMcDropout(false);
    assert.ok(run().equal(run()));
  });
  net.dispose();
});

test('named activations and attention maps of the last forward, usable for Grad-CAM', () => {
  const net = new HybridNet(smallConfig('hybridnet', 3, { features: [4, 8, 16], dropout: 0, extra: { depth: 2, transformerStages: 1 } }));
  torch.tidy(() => {
    const x = torch.randn([1, 1, 8, 16, 16]);
    const out = net.train().forward(x) as Tensor[];
    const acts = lastActivations(net);
    for (const k of [
      'encoder.stage0',
      'encoder.stage2',
      'transformer.block0.attn',
      'transformer.block1.attn',
      'attention.gate0',
      'attention.gate1',
      'cbam.skip0.spatial',
      'decoder.stage0',
      'logits',
    ]) {
      assert.ok(acts.has(k), `missing ${k}; have ${[...acts.keys()].join(', ')}`);
    }
    // Bottleneck 2x4x4 = 32 tokens: a row-stochastic 32x32 attention map.
    const a = acts.get('transformer.block0.attn')!;
    assert.deepEqual(a.shape, [1, 32, 32]);
    assert.ok(a.sum(-1).sub(1).abs().max().item() < 1e-5);
    assert.deepEqual(acts.get('attention.gate0')!.shape, [1, 1, 8, 16, 16]);
    // Grad-CAM needs the gradient at an activation: it is the graph's tensor.
    const feat = acts.get('encoder.stage2')!.retainGrad();
    out[0]!.select(1, 1).sum().backward();
    const g = feat.grad!;
    assert.deepEqual(g.shape, feat.shape);
    assert.ok(g.abs().sum().item() > 0);
  });
  net.dispose();
});

test('HybridNet rejects a modality count that does not divide the channels; MACs grow with the transformer', () => {
  assert.throws(
    () => new HybridNet(smallConfig('hybridnet', 2, { inChannels: 3, extra: { fusion: 'cross-attention', modalities: 2 } })),
    /must divide inChannels/,
  );
  const a = new HybridNet(smallConfig('hybridnet', 2, { extra: { depth: 1 } }));
  const b = new HybridNet(smallConfig('hybridnet', 2, { extra: { depth: 3 } }));
  assert.ok(countMACs(b, [32, 32]) > countMACs(a, [32, 32]));
  a.dispose();
  b.dispose();
  void F;
});
