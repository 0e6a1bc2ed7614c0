/**
 * `medseg register` on small crops of two hippocampus MR volumes: the warped
 * image, the field (NIfTI vector intent) and the warped labels are written
 * in the fixed crop's geometry, and contradictory options are a usage error.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readNifti } from '../../io/nifti.ts';
import { readVolume, writeVolume } from '../../io/read.ts';
import { runMedseg } from '../../testing/cli.ts';
import { cropVolume } from '../../testing/crop.ts';
import { dataPath } from '../../testing/data.ts';
import { EXIT_OK, EXIT_USAGE } from '../errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-register-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('register writes the warped image, a vector field and warped labels on the fixed grid', { timeout: 120_000 }, async () => {
  const hippo = (kind: string, id: string) => readVolume(dataPath('msd-hippocampus', kind, `hippocampus_${id}.nii.gz`));
  const fixed = cropVolume(await hippo('images', '026'), [8, 14, 9], [20, 22, 18]);
  const moving = cropVolume(await hippo('images', '001'), [7, 13, 8], [21, 24, 19]);
  const labels = cropVolume(await hippo('labels', '001'), [7, 13, 8], [21, 24, 19]);
  const paths = { fixed: join(tmp, 'fixed.nii.gz'), moving: join(tmp, 'moving.nii.gz'), labels: join(tmp, 'labels.nii.gz') };
  await writeVolume(paths.fixed, fixed);
  await writeVolume(paths.moving, moving);
  await writeVolume(paths.labels, labels);
  const out = join(tmp, 'out');

  const r = runMedseg(['register', paths.fixed, paths.moving, '--moving-labels', paths.labels, '--out', out, '--iterations', '15', '--json']);
  assert.equal(r.status, EXIT_OK, r.stderr);
  const res = JSON.parse(r.stdout) as { ok: boolean; method: string; foldingFraction: number; affine: number[] };
  assert.equal(res.ok, true);
  assert.equal(res.method, 'instance-optimisation');
  assert.ok(res.foldingFraction >= 0 && res.foldingFraction < 0.01);

  const same = (a: readonly number[], b: readonly number[]) => a.every((v, k) => Math.abs(v - b[k]!) < 1e-4);
  const warped = await readNifti(join(out, 'warped.nii.gz'));
  const field = await readNifti(join(out, 'field.nii.gz'));
  const warpedLabels = await readNifti(join(out, 'warped-labels.nii.gz'));
  for (const v of [warped, field, warpedLabels]) {
    assert.deepEqual(v.size, fixed.size);
    assert.ok(same(v.spacing, fixed.spacing) && same(v.origin, fixed.origin) && same(v.direction, fixed.direction), 'fixed geometry');
  }
  assert.equal(field.channels, 3);
  assert.equal(field.meta.extra?.intentCode, 1007);
  assert.deepEqual(field.meta.extra?.shape, [...fixed.size, 1, 3]);
  assert.ok(warpedLabels.data instanceof Uint8Array);
  const values = new Set(warpedLabels.data);
  assert.ok([...values].every((v) => v <= 2) && values.has(1) && values.has(2), `labels ${[...values].join(',')}`);
  // displacements stay on the scale of the crops (mm)
  assert.ok(Math.max(...Array.from(field.data as Float32Array).map(Math.abs)) < 20);
  const summary = JSON.parse(readFileSync(join(out, 'registration.json'), 'utf8')) as { affine: number[] };
  assert.deepEqual(summary.affine, res.affine);

  const affineOnly = runMedseg(['register', paths.fixed, paths.moving, '--out', join(tmp, 'affine'), '--affine-only', '--json']);
  assert.equal(affineOnly.status, EXIT_OK, affineOnly.stderr);
  assert.equal((JSON.parse(affineOnly.stdout) as { foldingFraction: number }).foldingFraction, 0);
  assert.ok(!existsSync(join(tmp, 'affine', 'warped-labels.nii.gz')));

  const bad = runMedseg(['register', paths.fixed, paths.moving, '--out', join(tmp, 'bad'), '--affine-only', '--model', tmp]);
  assert.equal(bad.status, EXIT_USAGE);
  assert.match(bad.stderr, /contradict/);
});
