/**
 * `medseg enhance` on a folder of two small crops of real hippocampus MR
 * volumes: a few super-resolution steps, a resumed run, applying the model
 * to a thick-slice image (twice the slices at half the spacing), and the
 * errors for a wrong factor, a missing dataset and a segmentation model
 * folder given where an enhancement model belongs.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readVolume, writeVolume } from '../../io/read.ts';
import { runMedseg } from '../../testing/cli.ts';
import { cropVolume } from '../../testing/crop.ts';
import { dataPath } from '../../testing/data.ts';
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE } from '../errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-enhance-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('enhance train (sr x2, resumed) and apply on a thick-slice image; bad input gets typed errors', { timeout: 120_000 }, async () => {
  const data = join(tmp, 'data');
  mkdirSync(data);
  for (const id of ['001', '014']) {
    const v = await readVolume(dataPath('msd-hippocampus', 'images', `hippocampus_${id}.nii.gz`));
    await writeVolume(join(data, `h${id}.nii.gz`), cropVolume(v, [4, 8, 4], [24, 32, 16]));
  }
  const out = join(tmp, 'model');
  const small = ['--iterations', '2', '--batch-size', '2', '--json'];
  let r = runMedseg(['enhance', 'train', data, '--task', 'sr', '--factor', '2', '--out', out, '--epochs', '2', ...small]);
  assert.equal(r.status, EXIT_OK, r.stderr);
  assert.ok(existsSync(join(out, 'enhance.json')) && existsSync(join(out, 'model_best.safetensors')));
  r = runMedseg(['enhance', 'train', data, '--task', 'sr', '--factor', '2', '--out', out, '--epochs', '3', '--resume', ...small]);
  assert.equal(r.status, EXIT_OK, r.stderr);
  const res = JSON.parse(r.stdout) as { result: { epochsRun: number; iterations: number }; trainImages: number; valImages: number };
  assert.equal(res.result.epochsRun, 3);
  assert.equal(res.result.iterations, 6, 'the resumed run adds one epoch of 2 steps to the 4 before');
  assert.deepEqual([res.trainImages, res.valImages], [1, 1]);

  const thick = cropVolume(await readVolume(join(data, 'h014.nii.gz')), [0, 0, 0], [24, 32, 8]);
  await writeVolume(join(tmp, 'thick.nii.gz'), thick);
  r = runMedseg(['enhance', 'apply', out, join(tmp, 'thick.nii.gz'), '--out', join(tmp, 'thin.nii.gz'), '--json']);
  assert.equal(r.status, EXIT_OK, r.stderr);
  const thin = await readVolume(join(tmp, 'thin.nii.gz'));
  assert.deepEqual(thin.size, [24, 32, 16]);
  assert.ok(Math.abs(thin.spacing[2] - thick.spacing[2] / 2) < 1e-6);

  r = runMedseg(['enhance', 'train', data, '--task', 'sr', '--factor', '3', '--out', join(tmp, 'x')]);
  assert.equal(r.status, EXIT_USAGE);
  assert.match(r.stderr, /factor must be 2 or 4/);
  r = runMedseg(['enhance', 'train', join(tmp, 'nowhere'), '--task', 'denoise', '--out', join(tmp, 'y')]);
  assert.equal(r.status, EXIT_BAD_INPUT);
  assert.match(r.stderr, /does not exist/);
  const seg = join(tmp, 'seg');
  mkdirSync(seg);
  writeFileSync(join(seg, 'plan.json'), '{}');
  r = runMedseg(['enhance', 'apply', seg, join(tmp, 'thick.nii.gz'), '--out', join(tmp, 'z.nii.gz')]);
  assert.equal(r.status, EXIT_BAD_INPUT);
  assert.match(r.stderr, /segmentation model folder/);
  assert.ok(!existsSync(join(tmp, 'z.nii.gz')));
});
