/**
 * Classifier Grad-CAM localises what the class is about: a tiny ResNet
 * trained to tell images with a bright blob (class 1, at a random place) from
 * blob-free noise puts most of its class-1 heat on the blob. Also: the map
 * has the input's size, Grad-CAM++ works on the same layer, and bad classes
 * and layers are typed errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { classifierConfig, createClassifier } from '../models/classifier-registry.ts';
import { Rng } from '../util/random.ts';
import { MedsegExplainError } from './errors.ts';
import { classifierGradCam, classifierHeatPng } from './classify-gradcam.ts';

const S = 24;

/** Noise images; class 1 adds a bright Gaussian blob (radius ~2 px) at a random place away from the border. */
function blobImages(n: number, rng: Rng): { x: Float32Array; y: number[]; centres: [number, number][] } {
  const x = new Float32Array(n * S * S);
  const y: number[] = [];
  const centres: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    const cy = 4 + rng.int(S - 8);
    const cx = 4 + rng.int(S - 8);
    for (let r = 0; r < S; r++) {
      for (let c = 0; c < S; c++) {
        const blob = label ? 2.5 * Math.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * 1.5 ** 2)) : 0;
        x[i * S * S + r * S + c] = 0.3 * rng.normal() + blob;
      }
    }
    y.push(label);
    centres.push([cy, cx]);
  }
  return { x, y, centres };
}

test('classifier Grad-CAM puts the blob class heat on the blob', () => {
  torch.manualSeed(3);
  const rng = new Rng(5);
  const net = createClassifier(classifierConfig('resnet18', [S, S], { width: 8, extra: { blocks: [1, 1] } }));
  const opt = new torch.optim.AdamW(net.parameters(), { lr: 3e-3 });
  try {
    net.train();
    for (let step = 0; step < 40; step++) {
      const b = blobImages(32, rng);
      torch.tidy(() => {
        const loss = torch.F.crossEntropy(net.forward(torch.tensor(b.x, [32, 1, S, S])), torch.tensor(b.y, [32], { dtype: 'int64' }));
        opt.zeroGrad();
        loss.backward();
        opt.step();
      });
    }
    const t = blobImages(16, new Rng(99));
    const inside: number[] = [];
    for (let i = 1; i < 16; i += 2) {
      const heat = torch.tidy(() =>
        classifierGradCam(net, torch.tensor(t.x.slice(i * S * S, (i + 1) * S * S), [1, 1, S, S]), { classIndex: 1 }).toFloat32Array(),
      );
      assert.equal(heat.length, S * S);
      const [cy, cx] = t.centres[i]!;
      let near = 0;
      let total = 0;
      heat.forEach((h, k) => {
        total += h;
        if (Math.hypot(Math.floor(k / S) - cy, (k % S) - cx) <= 5) near += h;
      });
      inside.push(total > 0 ? near / total : 0);
    }
    // A disc of radius 5 covers ~14 % of the image; trained, the heat concentrates there (~0.77; ~0.39 untrained).
    const mean = inside.reduce((a, b) => a + b, 0) / inside.length;
    assert.ok(mean > 0.6, `share of class-1 heat within 5 px of the blob: ${inside.map((v) => v.toFixed(2)).join(' ')}`);
    const x0 = torch.tensor(t.x.slice(S * S, 2 * S * S), [1, 1, S, S]);
    const pp = torch.tidy(() => classifierGradCam(net, x0, { classIndex: 1, plusPlus: true }).toFloat32Array());
    assert.ok(pp.some((v) => v > 0));
    const png = classifierHeatPng(t.x.slice(S * S, 2 * S * S), pp, [S, S]);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    assert.throws(
      () => classifierGradCam(net, x0, { classIndex: 2 }),
      (e) => e instanceof MedsegExplainError && e.code === 'BAD_OPTION',
    );
    assert.throws(
      () => classifierGradCam(net, x0, { classIndex: 1, layer: 'head.fc' }),
      (e) => e instanceof MedsegExplainError && e.code === 'NO_LAYER',
    );
    x0.dispose();
  } finally {
    opt.dispose();
    net.dispose();
  }
});
