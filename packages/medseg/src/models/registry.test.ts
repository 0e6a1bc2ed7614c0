import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { architectureInfo, countMACs, countParameters, createNetwork, lastActivations, listArchitectures } from './registry.ts';
import { smallConfig } from '../testing/models.ts';

test('architecture names resolve with aliases; types are as documented', () => {
  assert.equal(architectureInfo('UNetPP').name, 'unet++');
  assert.equal(architectureInfo('swin-unetr').type, 'transformer');
  assert.equal(architectureInfo('attention-unet').type, 'CNN+attention');
  assert.equal(architectureInfo('hybridnet').type, 'CNN+transformer');
  assert.throws(() => architectureInfo('segformer'), /choose one of unet, attention-unet/);
});

test('MACs scale with the input volume for CNNs, faster than linear for global attention', () => {
  const unet = createNetwork(smallConfig('unet', 2));
  const a = countMACs(unet, [16, 16]);
  assert.equal(countMACs(unet, [32, 32]), 4 * a);
  // TransUNet's bottleneck attention over all tokens: L^2 terms grow 16x when the side doubles.
  const tu = createNetwork(smallConfig('transunet', 2, { extra: { depth: 1 } }));
  const b16 = countMACs(tu, [16, 16]);
  const b32 = countMACs(tu, [32, 32]);
  assert.ok(b32 > 4 * b16, `${b32} vs ${4 * b16}`);
  // countMACs leaves the training flag as it was.
  tu.train();
  countMACs(tu, [16, 16]);
  assert.equal(tu.training, true);
  unet.dispose();
  tu.dispose();
});

test('every architecture records named activations (encoder stages, logits; attention maps where it has attention)', () => {
  const expect: Record<string, string[]> = {
    'attention-unet': ['attention.gate0', 'attention.gate1'],
    transunet: ['transformer.block0.attn'],
    'swin-unetr': ['swin.stage1.block0.attn', 'swin.stage2.block1.attn'],
    hybridnet: ['transformer.block0.attn', 'attention.gate0', 'cbam.skip1.spatial'],
    'unet++': ['nested.x0_2'],
  };
  for (const { name } of listArchitectures()) {
    const extra = name === 'swin-unetr' ? { window: [2, 2] } : {};
    const net = createNetwork(smallConfig(name, 2, { extra }));
    assert.ok(countParameters(net) > 0);
    torch.tidy(() => {
      torch.noGrad(() => net.eval().forward(torch.randn([1, 1, 16, 16])));
      const acts = lastActivations(net);
      for (const k of ['encoder.stage0', 'encoder.stage2', 'logits', ...(expect[name] ?? [])])
        assert.ok(acts.has(k), `${name}: missing ${k} (has ${[...acts.keys()].join(', ')})`);
      const logits = acts.get('logits') as Tensor;
      assert.deepEqual(logits.shape, [1, 2, 16, 16]);
    });
    net.dispose();
  }
});
