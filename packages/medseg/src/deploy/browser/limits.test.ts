import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wasmLimitProblem, webGpuLimitProblem, webMemoryNeeds } from './limits.ts';

const unet = (patch: number[], features: number[], extra?: Record<string, unknown>) => ({
  patchSize: patch,
  network: {
    architecture: 'unet',
    dims: 3 as const,
    inChannels: 1,
    numClasses: 3,
    features,
    kernelSizes: features.map(() => [3, 3, 3]),
    strides: features.map((_, s) => (s === 0 ? [1, 1, 1] : [2, 2, 2])),
    deepSupervision: false,
    norm: 'instance' as const,
    ...(extra ? { extra } : {}),
  },
});

test('memory needs of a U-Net by hand: stage activations from features and strides, attention when the network has heads', () => {
  // 32^3 patch, features 8, 16: stage voxels 32768 and 4096; 2 x 4 bytes x features x voxels = 2 MiB and 0.5 MiB.
  const n = webMemoryNeeds(unet([32, 32, 32], [8, 16]), 1000);
  assert.equal(n.largestTensorBytes, 2 * 4 * 8 * 32768);
  assert.equal(n.peakBytes, (2 * 4 * 8 * 32768 + 2 * 4 * 16 * 4096) * 2 + 2 * 4 * 8 * 32768 + 1000);
  // 4 heads over the 4096 tokens of the deepest stage: 4 x 4096^2 x 4 bytes = 256 MiB, the largest tensor.
  const t = webMemoryNeeds(unet([32, 32, 32], [8, 16], { heads: 4 }), 0);
  assert.equal(t.largestTensorBytes, 4 * 4 * 4096 * 4096);
});

test('the limits refuse what cannot fit, naming the sizes, and pass what can', () => {
  const small = { largestTensorBytes: 64 * 1024 ** 2, peakBytes: 300 * 1024 ** 2 };
  assert.equal(webGpuLimitProblem(small, { maxStorageBufferBindingSize: 128 * 1024 ** 2, maxBufferSize: 256 * 1024 ** 2 }), null);
  assert.equal(
    webGpuLimitProblem({ ...small, largestTensorBytes: 200 * 1024 ** 2 }, { maxStorageBufferBindingSize: 128 * 1024 ** 2, maxBufferSize: 256 * 1024 ** 2 }),
    "its largest tensor (about 200 MiB) exceeds this GPU's buffer limit (128 MiB)",
  );
  assert.equal(wasmLimitProblem(small, 100 * 1024 ** 2), null);
  assert.match(
    wasmLimitProblem({ ...small, peakBytes: 4000 * 1024 ** 2 }, 200 * 1024 ** 2)!,
    /about 4000 MiB beside the case's 200 MiB, more than the 4096 MiB/,
  );
});
