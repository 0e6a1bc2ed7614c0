import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { zoomAxis } from '../data/bspline-zoom.ts';
import { normalise, type Shape3 } from '../data/enhance-pairs.ts';
import { readNifti } from '../io/nifti.ts';
import { EnhancementModel } from '../models/enhance-model.ts';
import { cropVolume } from '../testing/crop.ts';
import { dataPath } from '../testing/data.ts';
import { enhanceArray } from './enhance.ts';

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test('the sliding window puts every tile back in place: an identity model returns its input (3D patches, and 2D planes across the SR axis)', async () => {
  const v = cropVolume(await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_026.nii.gz')), [6, 10, 6], [20, 24, 18]);
  const shape: Shape3 = [v.size[2], v.size[1], v.size[0]];
  const x = normalise(v.data).data;
  const denoise3d = EnhancementModel.create({ task: 'denoise', dims: 3, features: [4, 8], patch: [16, 16, 16] });
  assert.ok(maxDiff(enhanceArray(denoise3d, x, shape, 0), x) < 1e-5, '3D sliding window');
  const sr2d = EnhancementModel.create({ task: 'sr', factor: 2, axis: 0, dims: 2, features: [4, 8], patch: [16, 16] });
  const z = zoomAxis(x, shape, 0, 2);
  assert.ok(maxDiff(enhanceArray(sr2d, z.data, z.shape, 0), z.data) < 1e-5, '2D planes along y, sliding window');
});

test('whole-image and sliding-window passes of a trained-looking 3D model agree in shape and roughly in value', async () => {
  torch.manualSeed(9);
  const v = cropVolume(await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_026.nii.gz')), [6, 10, 6], [20, 24, 18]);
  const shape: Shape3 = [v.size[2], v.size[1], v.size[0]];
  const x = normalise(v.data).data;
  const model = EnhancementModel.create({ task: 'denoise', dims: 3, features: [4, 8], patch: [16, 16, 16] });
  torch.noGrad(() => {
    for (const [name, p] of model.net.namedParameters())
      if (name.startsWith('seg_heads.') && !name.endsWith('bias')) p.copy_(torch.tidy(() => torch.randn(p.shape).mul(0.05)));
  });
  const whole = enhanceArray(model, x, shape);
  const tiled = enhanceArray(model, x, shape, 0);
  assert.ok(maxDiff(whole, x) > 1e-3, 'the residual head changes the image');
  // instance norm sees a tile instead of the volume, so the two differ a little, not a lot
  assert.ok(maxDiff(whole, tiled) < 0.5 * maxDiff(whole, x), `whole vs tiled ${maxDiff(whole, tiled)}, residual ${maxDiff(whole, x)}`);
});
