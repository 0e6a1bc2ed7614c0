import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dataPath } from '../testing/data.ts';
import { readDicomSeries } from './dicom/series.ts';
import { MedsegIoError } from './errors.ts';
import { reorient } from './geometry.ts';
import { readNifti } from './nifti.ts';
import { labelsOnGrid } from './same-voxels.ts';
import { IDENTITY3, type Volume } from './volume.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-same-voxels-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A 5x4x3 oblique grid whose voxels are numbered, so a wrong mapping shows as a wrong number. */
function numbered(): Volume {
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  return {
    data: Uint8Array.from({ length: 60 }, (_, i) => i + 1),
    size: [5, 4, 3],
    channels: 1,
    spacing: [0.8, 1.1, 2.5],
    origin: [-12.5, 40.25, 7],
    direction: [c, -s, 0, s, c, 0, 0, 0, 1],
    meta: {},
  };
}

test('labelsOnGrid undoes every permutation and flip of the axes (all 48 orientations), by position alone', () => {
  const v = numbered();
  let codes = 0;
  for (const a of ['L', 'R']) {
    for (const b of ['P', 'A']) {
      for (const c of ['S', 'I']) {
        for (const perm of [
          [a, b, c],
          [a, c, b],
          [b, a, c],
          [b, c, a],
          [c, a, b],
          [c, b, a],
        ]) {
          const moved = reorient(v, perm.join(''));
          assert.deepEqual(labelsOnGrid(moved.data as Uint8Array, moved, v), v.data, perm.join(''));
          assert.deepEqual(labelsOnGrid(v.data as Uint8Array, v, moved), moved.data, `back from ${perm.join('')}`);
          codes++;
        }
      }
    }
  }
  assert.equal(codes, 48);
});

test('labelsOnGrid refuses grids that are not the same voxels: shifted by part of a voxel, other spacing, rotated, cropped', () => {
  const v = numbered();
  const refused = (to: Volume, pattern: RegExp) =>
    assert.throws(
      () => labelsOnGrid(v.data as Uint8Array, v, to),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY' && pattern.test(e.message),
    );
  refused({ ...v, origin: [v.origin[0] + 0.3, v.origin[1], v.origin[2]] }, /shifted/);
  refused({ ...v, spacing: [0.4, 1.1, 2.5] }, /not the same voxels/);
  refused({ ...v, direction: IDENTITY3 }, /not the same voxels/);
  refused({ ...v, size: [5, 4, 2], data: new Uint8Array(40) }, /different voxels/);
  // Same count, one slice further along z: the last target slice has no source.
  refused({ ...v, origin: [v.origin[0], v.origin[1], v.origin[2] + 2.5] }, /different regions/);
  assert.throws(() => labelsOnGrid(new Uint8Array(7), v, v), /7 labels for a 5x4x3 grid/);
});

test("dcm2niix's NIfTI of a CT series, moved by position onto the grid readDicomSeries stacks, is the same image voxel for voxel", async () => {
  const series = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
  execFileSync('dcm2niix', ['-b', 'n', '-z', 'n', '-f', 'ct', '-o', tmp, series], { stdio: 'ignore' });
  const nifti = await readNifti(
    join(
      tmp,
      readdirSync(tmp).find((f) => f.endsWith('.nii'))!,
    ),
  );
  const dicom = await readDicomSeries(series);
  // dcm2niix flips the rows (NIfTI's y runs the other way): the files differ in voxel order, not in content.
  assert.notDeepEqual(Array.from(nifti.data.subarray(0, 512)), Array.from(dicom.data.subarray(0, 512)));
  // labelsOnGrid moves 8-bit labels: move each voxel's index, a byte at a time, and compare the CT numbers it points at.
  const index = Uint32Array.from({ length: nifti.data.length }, (_, i) => i);
  const low = labelsOnGrid(
    index.map((i) => i & 0xff),
    nifti,
    dicom,
  );
  const high = labelsOnGrid(
    index.map((i) => (i >> 8) & 0xff),
    nifti,
    dicom,
  );
  const hi2 = labelsOnGrid(
    index.map((i) => (i >> 16) & 0xff),
    nifti,
    dicom,
  );
  let mismatches = 0;
  for (let i = 0; i < dicom.data.length; i++) {
    const src = low[i]! | (high[i]! << 8) | (hi2[i]! << 16);
    if (Number(nifti.data[src]) !== Number(dicom.data[i])) mismatches++;
  }
  assert.equal(mismatches, 0);
});
