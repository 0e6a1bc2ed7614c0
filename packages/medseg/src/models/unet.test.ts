import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { UNet } from './unet.ts';
import { checkSafetensorsRoundTrip, checkShapesAndGradients, emCrop, hippocampusCrop, overfit, smallConfig } from '../testing/models.ts';

torch.manualSeed(0);

test('U-Net 2D: shapes of every deep-supervision head, gradients, even and non-square sizes', () => {
  for (const spatial of [
    [32, 32],
    [24, 40],
  ]) {
    const net = new UNet(smallConfig('unet', 2));
    checkShapesAndGradients(net, spatial);
    net.dispose();
  }
});

test('U-Net 3D: per-axis strides [[1,1,1],[1,2,2],[2,2,2]], odd bottleneck, batch norm and upsample+conv', () => {
  const strides = [
    [1, 1, 1],
    [1, 2, 2],
    [2, 2, 2],
  ];
  for (const [over, spatial] of [
    [{ strides }, [16, 32, 24]],
    [{ strides, norm: 'batch' as const, upsample: 'interpolate' as const }, [6, 20, 12]],
    [
      {
        features: [4, 8, 16, 16],
        kernelSizes: [
          [1, 3, 3],
          [3, 3, 3],
          [3, 3, 3],
          [3, 3, 3],
        ],
        strides: [
          [1, 1, 1],
          [1, 2, 2],
          [2, 2, 2],
          [2, 2, 2],
        ],
        norm: 'group' as const,
      },
      [8, 24, 8],
    ],
  ] as const) {
    const net = new UNet(smallConfig('unet', 3, over as object));
    checkShapesAndGradients(net, [...spatial]);
    net.dispose();
  }
});

test('U-Net without deep supervision returns one tensor in training mode too', () => {
  const net = new UNet(smallConfig('unet', 2, { deepSupervision: false }));
  checkShapesAndGradients(net, [16, 16]);
  net.dispose();
});

test('U-Net: safetensors round trip gives identical outputs (2D, 3D with batch norm)', () => {
  checkSafetensorsRoundTrip(() => new UNet(smallConfig('unet', 2)), [16, 24]);
  checkSafetensorsRoundTrip(() => new UNet(smallConfig('unet', 3, { norm: 'batch', upsample: 'interpolate' })), [8, 8, 12]);
});

test('U-Net: rejects inputs not divisible by the total stride and bad configs with clear errors', () => {
  const net = new UNet(smallConfig('unet', 2));
  assert.throws(() => torch.tidy(() => net.forward(torch.randn([1, 1, 30, 32]))), /divisible by the total stride \[4, 4\]/);
  assert.throws(() => torch.tidy(() => net.forward(torch.randn([1, 2, 32, 32]))), /expected 1 input channels/);
  assert.throws(
    () =>
      new UNet(
        smallConfig('unet', 2, {
          strides: [
            [1, 1],
            [2, 2],
          ],
        }),
      ),
    /one entry per stage/,
  );
  net.dispose();
});

test('U-Net initialisation is Kaiming normal with a = 0.01 (std = gain / sqrt(fan_in))', () => {
  const net = new UNet(smallConfig('unet', 3, { features: [16, 32, 64] }));
  const w = net.namedParameters().find(([n]) => n === 'encoder.2.convs.1.conv.weight')![1];
  const fanIn = 64 * 27;
  const expected = Math.sqrt(2 / (1 + 0.01 ** 2)) / Math.sqrt(fanIn);
  const std = torch.tidy(() => w.std().item());
  assert.ok(Math.abs(std / expected - 1) < 0.03, `std ${std} vs ${expected}`);
  net.dispose();
});

test('U-Net overfits one real case: 64x64 ISBI EM crop (membranes, 2D) and a hippocampus crop (3D)', async () => {
  torch.manualSeed(1);
  const em = await emCrop(64);
  const net2 = new UNet(smallConfig('unet', 2, { features: [8, 16, 32] }));
  const r2 = overfit(net2, em.image, em.label, { maxSteps: 300, lr: 1e-2 });
  assert.ok(r2.dice[0]! > 0.95, `2D membrane Dice ${r2.dice} after ${r2.steps} steps`);
  const hip = await hippocampusCrop([16, 24, 16]);
  const net3 = new UNet(smallConfig('unet', 3, { numClasses: 3, features: [8, 16, 32] }));
  const r3 = overfit(net3, hip.image, hip.label, { maxSteps: 300, lr: 1e-2 });
  assert.ok(Math.min(...r3.dice) > 0.95, `3D hippocampus Dice ${r3.dice} after ${r3.steps} steps`);
  console.log(
    `overfit: EM membranes Dice ${r2.dice.map((d) => d.toFixed(3))} in ${r2.steps} steps; hippocampus ${r3.dice.map((d) => d.toFixed(3))} in ${r3.steps} steps`,
  );
  net2.dispose();
  net3.dispose();
});
