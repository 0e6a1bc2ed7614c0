/**
 * Every architecture can fit one real case (Dice > 0.95 on it), in 2D and in
 * 3D (U-Net's runs are in unet.test.ts): 3D on a hippocampus crop (anterior
 * and posterior labels), 2D on a 64x64 ISBI EM crop (membranes). The Dice is
 * computed in test-utils from the argmax, not by the code under test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { createNetwork } from './registry.ts';
import { emCrop, hippocampusCrop, overfit, smallConfig } from '../testing/models.ts';

const plans: [string, 2 | 3, Partial<NetworkConfig>][] = [
  ['attention-unet', 2, {}],
  ['attention-unet', 3, {}],
  ['unet++', 2, {}],
  ['unet++', 3, {}],
  ['resunet', 2, {}],
  ['resunet', 3, {}],
  ['resenc-unet', 2, {}],
  ['resenc-unet', 3, {}],
  ['r2unet', 2, {}],
  ['r2unet', 3, {}],
  ['transunet', 2, { extra: { depth: 1, inputSize: [64, 64] } }],
  ['transunet', 3, { extra: { depth: 1, inputSize: [16, 24, 16] } }],
  ['swin-unetr', 2, { extra: { window: [4, 4] } }],
  ['swin-unetr', 3, { extra: { window: [2, 2, 2] } }],
  ['hybridnet', 2, { dropout: 0, extra: { depth: 1 } }],
  ['hybridnet', 3, { dropout: 0, extra: { depth: 1 } }],
];

for (const [arch, dims, over] of plans) {
  test(`${arch} ${dims}D overfits one real case (Dice > 0.95)`, async () => {
    torch.manualSeed(7);
    const data = dims === 3 ? await hippocampusCrop([16, 24, 16]) : await emCrop(64);
    const numClasses = dims === 3 ? 3 : 2;
    const net = createNetwork(smallConfig(arch, dims, { numClasses, features: [8, 16, 32], ...over }));
    const r = overfit(net, data.image, data.label, { maxSteps: 300, lr: arch === 'swin-unetr' || arch === 'transunet' ? 3e-3 : 1e-2 });
    console.log(`${arch} ${dims}D: Dice ${r.dice.map((d) => d.toFixed(3)).join('/')} after ${r.steps} steps`);
    assert.ok(Math.min(...r.dice) > 0.95, `${arch} ${dims}D Dice ${r.dice} after ${r.steps} steps`);
    net.dispose();
    torch.dispose(data);
  });
}
