/**
 * The learned registration model: a tiny U-Net trains within its budget on
 * synthetic shifted pairs, lowers the loss, survives a save/load round trip
 * with identical predictions, and drives registerFiles (`medseg register --model`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as torch from '@medseg/torch';
import { readNifti } from '../io/nifti.ts';
import { writeVolume } from '../io/read.ts';
import { IDENTITY3, type Vec3, type Volume } from '../io/volume.ts';
import { RegistrationModel, trainRegistrationModel, type TrainingPair } from './network.ts';
import { registerFiles } from './register-files.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-regnet-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const IDENTITY4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
const SIZE: Vec3 = [13, 12, 11];

function blobVolume(shift: Vec3): Volume {
  const [nx, ny, nz] = SIZE;
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++)
        data[(z * ny + y) * nx + x] =
          Math.exp(-((x - 5 - shift[0]) ** 2 + (y - 6 - shift[1]) ** 2 + (z - 5 - shift[2]) ** 2) / 8) +
          0.6 * Math.exp(-((x - 9 - shift[0]) ** 2 + (y - 4 - shift[1]) ** 2 + (z - 7 - shift[2]) ** 2) / 4);
  return { data, size: [...SIZE], channels: 1, spacing: [1, 1, 1], origin: [0, 0, 0], direction: IDENTITY3, meta: {} };
}

const placed = (v: Volume) => ({
  image: torch.tensor(v.data as Float32Array, [1, 1, v.size[2], v.size[1], v.size[0]]).keep(),
  geometry: { size: v.size, spacing: v.spacing, origin: v.origin, direction: v.direction },
});

test('a small registration U-Net trains on shifted pairs, saves, loads and registers files', async () => {
  const model = RegistrationModel.create({ features: [4, 8], window: 5 });
  const fixed = placed(blobVolume([0, 0, 0]));
  const pairs: TrainingPair[] = [
    [1, 0, 0],
    [0, -1, 1],
  ].map((s) => ({ fixed, moving: placed(blobVolume(s as Vec3)), affine: IDENTITY4 }));
  const first = trainRegistrationModel(model, pairs, { seconds: 30, maxSteps: 1, lr: 3e-3 });
  const r = trainRegistrationModel(model, pairs, { seconds: 30, maxSteps: 40, lr: 3e-3, seed: 2 });
  assert.equal(first.steps, 1);
  assert.equal(r.steps, 40);
  assert.ok(r.loss < first.loss - 0.02, `loss ${first.loss} -> ${r.loss}`);

  const dir = join(tmp, 'model');
  model.save(dir);
  const loaded = RegistrationModel.load(dir);
  torch.tidy(() => {
    const a = model.predict(fixed, pairs[0]!.moving, IDENTITY4);
    const b = loaded.predict(fixed, pairs[0]!.moving, IDENTITY4);
    assert.deepEqual(a.shape, [1, 3, SIZE[2], SIZE[1], SIZE[0]]);
    assert.equal(a.sub(b).abs().max().item(), 0);
    assert.ok(a.abs().max().item() > 0.01, 'the trained model moves voxels');
  });

  await writeVolume(join(tmp, 'fixed.nii.gz'), blobVolume([0, 0, 0]));
  await writeVolume(join(tmp, 'moving.nii.gz'), blobVolume([1, 0, 0]));
  const out = await registerFiles(join(tmp, 'fixed.nii.gz'), join(tmp, 'moving.nii.gz'), join(tmp, 'out'), { model: dir, affine: { iterations: [5, 5, 5] } });
  assert.equal(out.method, 'model');
  const field = await readNifti(out.field);
  assert.equal(field.channels, 3);
  assert.deepEqual(field.size, SIZE);
  assert.throws(() => RegistrationModel.load(join(tmp, 'nothing')), /not a registration model folder/);
});
