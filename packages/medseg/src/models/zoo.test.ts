/**
 * Every architecture of the registry, 2D and 3D: deep-supervision head shapes
 * for even, non-square and per-axis-strided sizes, gradients reaching every
 * parameter, upsample+conv decoders, and safetensors round trips.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { createNetwork, listArchitectures } from './registry.ts';
import { checkSafetensorsRoundTrip, checkShapesAndGradients, smallConfig } from '../testing/models.ts';

torch.manualSeed(0);

const small = (arch: string, dims: 2 | 3, over: Partial<NetworkConfig> = {}): NetworkConfig => {
  const extra =
    arch === 'swin-unetr'
      ? { window: new Array(dims).fill(2) }
      : arch === 'transunet'
        ? { depth: 1 }
        : arch === 'hybridnet'
          ? { depth: 1, transformerStages: 2 }
          : {};
  return smallConfig(arch, dims, { extra, ...over });
};

const names = listArchitectures().map((a) => a.name);

test('the registry lists the nine architectures with a type and description', () => {
  assert.deepEqual(names, ['unet', 'attention-unet', 'unet++', 'resunet', 'resenc-unet', 'r2unet', 'transunet', 'swin-unetr', 'hybridnet']);
  for (const a of listArchitectures()) assert.ok(a.description.length > 20 && ['CNN', 'CNN+attention', 'CNN+transformer', 'transformer'].includes(a.type));
  assert.throws(() => createNetwork(smallConfig('vnet', 2)), /unknown architecture 'vnet'/);
});

for (const arch of names) {
  test(`${arch}: 2D shapes and gradients (32x32, 24x40), upsample+conv variant`, () => {
    for (const [over, spatial] of [
      [{}, [32, 32]],
      [{ upsample: 'interpolate' as const, norm: 'batch' as const }, [24, 40]],
    ] as const) {
      const net = createNetwork(small(arch, 2, over));
      checkShapesAndGradients(net, [...spatial]);
      net.dispose();
    }
  });

  test(`${arch}: 3D shapes and gradients, strides [[1,1,1],[1,2,2],[2,2,2]] at 16x32x24, 4 stages with upsample+conv`, () => {
    const strides = [
      [1, 1, 1],
      [1, 2, 2],
      [2, 2, 2],
    ];
    let net = createNetwork(small(arch, 3, { strides }));
    checkShapesAndGradients(net, [16, 32, 24], 1);
    net.dispose();
    net = createNetwork(
      small(arch, 3, {
        features: [4, 8, 8, 16],
        kernelSizes: [
          [1, 3, 3],
          [3, 3, 3],
          [3, 3, 3],
          [3, 3, 3],
        ],
        strides: [
          [1, 1, 1],
          [2, 2, 2],
          [2, 2, 2],
          [1, 2, 2],
        ],
        upsample: 'interpolate',
        norm: 'group',
      }),
    );
    checkShapesAndGradients(net, [8, 16, 24], 1);
    net.dispose();
  });

  test(`${arch}: safetensors round trip, 2D and 3D`, () => {
    checkSafetensorsRoundTrip(() => createNetwork(small(arch, 2, { norm: 'batch' })), [16, 24]);
    checkSafetensorsRoundTrip(() => createNetwork(small(arch, 3)), [8, 8, 12]);
  });
}
