import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readNifti } from '../io/nifti.ts';
import { dataPath } from '../testing/data.ts';
import { runPython } from '../testing/python.ts';
import { addRicianNoise, foregroundScale } from './rician.ts';

test('Rician noise: the background follows Rayleigh(sigma), a bright signal A has E[M²] = A² + 2 sigma², and a seed repeats it', () => {
  const n = 200_000;
  const sigma = 0.1;
  const background = addRicianNoise(new Float32Array(n), sigma, 3);
  const mean = background.reduce((s, v) => s + v, 0) / n;
  // Rayleigh: mean sigma sqrt(pi/2), standard deviation sigma sqrt(2 - pi/2); the tolerance is 5 standard errors
  const se = (sigma * Math.sqrt(2 - Math.PI / 2)) / Math.sqrt(n);
  assert.ok(Math.abs(mean - sigma * Math.sqrt(Math.PI / 2)) < 5 * se, `background mean ${mean} vs ${sigma * Math.sqrt(Math.PI / 2)}`);
  // Rayleigh CDF at the median: 1 - exp(-m² / 2 sigma²) = 1/2
  const sorted = Float32Array.from(background).sort();
  const median = sorted[n / 2]!;
  assert.ok(Math.abs(median - sigma * Math.sqrt(2 * Math.LN2)) < 0.002, `median ${median} vs ${sigma * Math.sqrt(2 * Math.LN2)}`);
  const bright = addRicianNoise(new Float32Array(n).fill(1), sigma, 4);
  const m2 = bright.reduce((s, v) => s + v * v, 0) / n;
  assert.ok(Math.abs(m2 - (1 + 2 * sigma * sigma)) < 0.002, `E[M²] ${m2} vs ${1 + 2 * sigma * sigma}`);
  assert.deepEqual(addRicianNoise([1, 2, 3], sigma, 9), addRicianNoise([1, 2, 3], sigma, 9));
  assert.notDeepEqual(addRicianNoise([1, 2, 3], sigma, 9), addRicianNoise([1, 2, 3], sigma, 10));
  assert.throws(() => addRicianNoise([1], -1, 1), RangeError);
});

test("the noise scale is NumPy's 99th percentile of a real volume's foreground", async () => {
  const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_014.nii.gz'));
  const path = dataPath('msd-hippocampus', 'images', 'hippocampus_014.nii.gz');
  const expected = Number(
    runPython([
      '-c',
      `import nibabel as nib, numpy as np; a = np.asarray(nib.load('${path}').dataobj, dtype=np.float64); print(repr(float(np.percentile(a[a > 0], 99))))`,
    ]),
  );
  assert.ok(Math.abs(foregroundScale(v.data) - expected) < 1e-6 * expected, `${foregroundScale(v.data)} vs ${expected}`);
});
