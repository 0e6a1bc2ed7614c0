import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augmentSample, jsGridSampler, type Sample } from './augment.ts';
import { torchGridSampler } from '../testing/augment-torch.ts';
import { defaultAugmentation } from '../plan/complete.ts';
import type { AugmentationParams } from '../plan/types.ts';
import { Rng } from '../util/random.ts';

/** Ellipsoid phantom: intensity 1 inside, 0 outside, smooth edge; label = intensity > 0.5. */
function phantom(shape: number[]): Sample {
  const n = shape.reduce((a, b) => a * b, 1);
  const image = new Float32Array(n),
    label = new Uint8Array(n);
  const d = shape.length;
  for (let i = 0; i < n; i++) {
    let rem = i,
      r = 0;
    for (let a = d - 1; a >= 0; a--) {
      const c = rem % shape[a]!;
      rem = Math.floor(rem / shape[a]!);
      const rad = [0.3, 0.35, 0.25][a + (3 - d)]! * shape[a]!;
      r += ((c - shape[a]! * (a === d - 1 ? 0.55 : 0.45)) / rad) ** 2;
    }
    image[i] = 1 / (1 + Math.exp((Math.sqrt(r) - 1) * 12));
    label[i] = image[i]! > 0.5 ? 1 : 0;
  }
  return { image, label, channels: 1, shape };
}

const none = (d: 2 | 3, patch: number[]): AugmentationParams => {
  const p = defaultAugmentation(d, patch);
  for (const k of ['rotation', 'scaling', 'elastic', 'mirror', 'noise', 'blur', 'brightness', 'contrast', 'lowResolution', 'gamma'] as const)
    (p[k] as { p: number }).p = 0;
  p.gamma.pInvert = 0;
  return p;
};

function agreement(s: Sample, margin = 0): number {
  let ok = 0,
    total = 0;
  for (let i = 0; i < s.label!.length; i++) {
    if (Math.abs(s.image[i]! - 0.5) < margin) continue; // the interpolated boundary band
    total++;
    if ((s.image[i]! > 0.5 ? 1 : 0) === s.label![i]) ok++;
  }
  return ok / total;
}

for (const shape of [
  [24, 40, 36],
  [64, 56],
]) {
  const d = shape.length as 2 | 3;
  test(`${d}D spatial augmentation keeps image and label aligned (label = threshold of image)`, () => {
    const p = none(d, shape);
    p.rotation.p = 1;
    p.scaling.p = 1;
    p.elastic.p = 1;
    p.elastic.alpha = [0, 3];
    p.elastic.sigma = [4, 5];
    p.mirror.p = 0.5;
    const s = phantom(shape);
    assert.equal(agreement(s), 1);
    let changed = 0;
    for (let seed = 0; seed < 6; seed++) {
      const out = augmentSample(s, p, new Rng(seed));
      // Away from the boundary band the label is exactly the thresholded image; overall nearly so.
      assert.equal(agreement(out, 0.25), 1, `seed ${seed}`);
      assert.ok(agreement(out) > 0.95, `seed ${seed}: agreement ${agreement(out)}`);
      if (out.label!.some((v, i) => v !== s.label![i])) changed++;
    }
    assert.ok(changed >= 5, 'the transforms actually moved the label');
  });

  test(`${d}D mirroring alone flips image and label together exactly`, () => {
    const p = none(d, shape);
    p.mirror.p = 1;
    const s = phantom(shape);
    const out = augmentSample(s, p, new Rng(3));
    assert.equal(agreement(out), 1);
    // flipping every axis maps voxel i to n-1-i
    const n = s.image.length;
    for (let i = 0; i < n; i += 97) assert.equal(out.image[i], s.image[n - 1 - i]);
  });

  test(`${d}D intensity augmentations leave the label untouched; same seed, same output`, () => {
    const p = none(d, shape);
    for (const k of ['noise', 'blur', 'brightness', 'contrast', 'lowResolution', 'gamma'] as const) p[k].p = 1;
    p.gamma.pInvert = 1;
    const s = phantom(shape);
    const a = augmentSample(s, p, new Rng(42));
    assert.deepEqual(a.label, s.label);
    assert.ok(a.image.some((v, i) => Math.abs(v - s.image[i]!) > 1e-3));
    const b = augmentSample(s, defaultAugmentation(d, shape), new Rng(7));
    const c = augmentSample(s, defaultAugmentation(d, shape), new Rng(7));
    assert.deepEqual(b, c);
    const e = augmentSample(s, p, new Rng(43));
    assert.notDeepEqual(a.image, e.image);
  });
}

test('the JS grid sampler equals torch grid_sample (bilinear and nearest, zero padding) in 2D and 3D', () => {
  const rng = new Rng(5);
  for (const shape of [
    [5, 7, 6],
    [9, 8],
  ]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const C = 2;
    const d = shape.length;
    const src = Float32Array.from({ length: C * n }, () => rng.normal());
    // one random sampling point per output voxel, some outside the volume
    const coords = Float32Array.from({ length: n * d }, (_, i) => rng.uniform(-1.5, shape[i % d]! + 0.5));
    for (const mode of ['linear', 'nearest'] as const) {
      const a = jsGridSampler(src, C, shape, coords, mode);
      const b = torchGridSampler(src, C, shape, coords, mode);
      let err = 0;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
      assert.ok(err < 1e-4, `${d}D ${mode}: max error ${err}`);
    }
  }
});
