import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNifti } from '../io/nifti.ts';
import { dataPath } from '../testing/data.ts';
import { runPythonJson } from '../testing/python.ts';
import { zoomAxis } from './bspline-zoom.ts';
import { cropToMultiple, thickSlices } from './thick-slices.ts';

const REF = new URL('../eval/image_quality_ref.py', import.meta.url).pathname;

test('cubic B-spline zoom of thick slices along each axis equals scipy.ndimage.zoom(order=3, reflect, grid_mode) on a real volume', async () => {
  const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_026.nii.gz'));
  const shape: [number, number, number] = [v.size[2], v.size[1], v.size[0]];
  const dir = mkdtempSync(join(tmpdir(), 'medseg-zoom-'));
  try {
    const cases = (
      [
        [0, 2],
        [1, 4],
        [2, 3],
      ] as const
    ).map(([axis, k]) => {
      const cut = cropToMultiple(v.data, shape, axis, k);
      return { axis, k, thick: thickSlices(cut.data, cut.shape, axis, k), cutShape: cut.shape };
    });
    const jobs = cases.map((c, i) => {
      writeFileSync(join(dir, `in${i}`), Float64Array.from(c.thick.data));
      return { op: 'zoom', input: join(dir, `in${i}`), shape: c.thick.shape, axis: c.axis, factor: c.k, out: join(dir, `out${i}`) };
    });
    const res = runPythonJson<{ shape: number[] }[]>([REF], jobs);
    cases.forEach((c, i) => {
      const ours = zoomAxis(c.thick.data, c.thick.shape, c.axis, c.k);
      assert.deepEqual(ours.shape, res[i]!.shape);
      assert.deepEqual(ours.shape, c.cutShape);
      const b = readFileSync(join(dir, `out${i}`));
      const ref = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
      let worst = 0;
      let scale = 0;
      for (let j = 0; j < ref.length; j++) {
        worst = Math.max(worst, Math.abs(ours.data[j]! - ref[j]!));
        scale = Math.max(scale, Math.abs(ref[j]!));
      }
      assert.ok(worst < 1e-4 * scale, `axis ${c.axis} x${c.k}: max difference ${worst} (values up to ${scale})`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('thick slices average k slices; a zoom by 1 is the identity; bad factors are RangeErrors', () => {
  const shape: [number, number, number] = [4, 1, 2];
  const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(Array.from(thickSlices(a, shape, 0, 2).data), [2, 3, 6, 7]);
  const z = zoomAxis(a, shape, 0, 1);
  assert.ok(z.data.every((x, i) => Math.abs(x - a[i]!) < 1e-5));
  assert.throws(() => thickSlices(a, shape, 0, 3), RangeError);
  assert.throws(() => cropToMultiple(a, shape, 1, 2), RangeError);
});
