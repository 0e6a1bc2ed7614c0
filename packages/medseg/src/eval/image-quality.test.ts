import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNifti } from '../io/nifti.ts';
import { dataPath } from '../testing/data.ts';
import { runPythonJson } from '../testing/python.ts';
import { Rng } from '../util/random.ts';
import { psnr, ssim } from './image-quality.ts';

const REF = new URL('./image_quality_ref.py', import.meta.url).pathname;

test('PSNR and SSIM (2D slice and 3D volume) match scikit-image on a real hippocampus MR volume', async () => {
  const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_014.nii.gz'));
  const [nx, ny, nz] = v.size;
  const clean = Float64Array.from(v.data);
  const rng = new Rng(7);
  // a blurred-and-noisy test image: neighbour average along x plus Gaussian noise
  const noisy = clean.map((c, i) => 0.5 * c + 0.5 * clean[i % nx === nx - 1 ? i : i + 1]! + 30 * rng.normal());
  const range = clean.reduce((m, c) => Math.max(m, c), -Infinity) - clean.reduce((m, c) => Math.min(m, c), Infinity);
  const z = Math.floor(nz / 2);
  const slice = (a: Float64Array) => a.slice(z * nx * ny, (z + 1) * nx * ny);
  const dir = mkdtempSync(join(tmpdir(), 'medseg-iq-'));
  try {
    const cases = [
      { shape: [1, ny, nx] as [number, number, number], ref: slice(clean), test: slice(noisy) },
      { shape: [nz, ny, nx] as [number, number, number], ref: clean, test: noisy },
    ];
    const jobs = cases.map((c, k) => {
      writeFileSync(join(dir, `ref${k}`), c.ref);
      writeFileSync(join(dir, `test${k}`), c.test);
      return { op: 'metrics', ref: join(dir, `ref${k}`), test: join(dir, `test${k}`), shape: c.shape, data_range: range };
    });
    const expected = runPythonJson<{ psnr: number; ssim: number }[]>([REF], jobs);
    cases.forEach((c, k) => {
      const p = psnr(c.ref, c.test, range);
      const s = ssim(c.ref, c.test, c.shape, { dataRange: range });
      assert.ok(Math.abs(p - expected[k]!.psnr) < 1e-4, `PSNR ${p} vs scikit-image ${expected[k]!.psnr}`);
      assert.ok(Math.abs(s - expected[k]!.ssim) < 1e-4, `SSIM ${s} vs scikit-image ${expected[k]!.ssim}`);
      assert.ok(s > 0.2 && s < 0.99, `SSIM ${s} is informative`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PSNR is infinite for identical images; SSIM is 1; bad input is a RangeError', () => {
  const a = Float32Array.from({ length: 11 * 11 }, (_, i) => Math.sin(i));
  assert.equal(psnr(a, a, 2), Infinity);
  assert.ok(Math.abs(ssim(a, a, [1, 11, 11], { dataRange: 2 }) - 1) < 1e-12);
  assert.throws(() => psnr(a, a.slice(1), 2), RangeError);
  assert.throws(() => ssim(a.slice(0, 100), a.slice(0, 100), [1, 10, 10], { dataRange: 2 }), RangeError);
});
