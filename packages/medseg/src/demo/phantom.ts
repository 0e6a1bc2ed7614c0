/**
 * A generated stand-in for the hippocampus data when ../shared/data is not
 * there: small 3D MR-like volumes, each with two touching ellipsoids (labels 1
 * and 2) of random size, position and contrast in a noisy, smoothly varying
 * background, written as an nnU-Net raw dataset (dataset.json, imagesTr/,
 * labelsTr/ with .nii.gz). Deterministic under its seed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeVolume } from '../io/read.ts';
import { IDENTITY3, type Volume } from '../io/volume.ts';
import { Rng } from '../util/random.ts';

export function phantomCase(seed: number, size: [number, number, number] = [36, 44, 32]): { image: Volume; label: Volume } {
  const rng = new Rng(seed);
  const rnd = () => rng.next();
  const [nx, ny, nz] = size;
  const n = nx * ny * nz;
  const img = new Float32Array(n);
  const lab = new Uint8Array(n);
  const c = [nx * (0.4 + 0.2 * rnd()), ny * (0.4 + 0.2 * rnd()), nz * (0.4 + 0.2 * rnd())];
  const r1 = [4 + 3 * rnd(), 5 + 4 * rnd(), 4 + 3 * rnd()];
  const r2 = [3 + 3 * rnd(), 4 + 3 * rnd(), 3 + 3 * rnd()];
  const offset = r1[1]! + r2[1]! * 0.7;
  const c2 = [c[0]! + (rnd() - 0.5) * 3, c[1]! + offset, c[2]! + (rnd() - 0.5) * 3];
  const contrast = [60 + 30 * rnd(), 90 + 30 * rnd()];
  const bias = [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5];
  for (let z = 0, i = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, i++) {
        const e1 = ((x - c[0]!) / r1[0]!) ** 2 + ((y - c[1]!) / r1[1]!) ** 2 + ((z - c[2]!) / r1[2]!) ** 2;
        const e2 = ((x - c2[0]!) / r2[0]!) ** 2 + ((y - c2[1]!) / r2[1]!) ** 2 + ((z - c2[2]!) / r2[2]!) ** 2;
        const field = 100 + 20 * ((bias[0]! * x) / nx + (bias[1]! * y) / ny + (bias[2]! * z) / nz);
        let v = field;
        if (e1 <= 1) {
          lab[i] = 1;
          v += contrast[0]!;
        } else if (e2 <= 1) {
          lab[i] = 2;
          v += contrast[1]!;
        }
        img[i] = v + 12 * rng.normal();
      }
  const geometry = { size, channels: 1, spacing: [1, 1, 1] as [number, number, number], origin: [0, 0, 0] as [number, number, number], direction: IDENTITY3 };
  return {
    image: { ...geometry, data: img, meta: { modality: 'MR' } },
    label: { ...geometry, data: lab, meta: {} },
  };
}

/** Writes `count` phantom cases as an nnU-Net raw dataset into dir. */
export async function writePhantomDataset(dir: string, count = 24, seed = 1): Promise<string> {
  mkdirSync(join(dir, 'imagesTr'), { recursive: true });
  mkdirSync(join(dir, 'labelsTr'), { recursive: true });
  for (let k = 0; k < count; k++) {
    const id = `phantom_${String(k).padStart(3, '0')}`;
    const { image, label } = phantomCase(seed * 1000 + k);
    await writeVolume(join(dir, 'imagesTr', `${id}_0000.nii.gz`), image);
    await writeVolume(join(dir, 'labelsTr', `${id}.nii.gz`), label);
  }
  writeFileSync(
    join(dir, 'dataset.json'),
    `${JSON.stringify({ name: 'phantom', description: 'medseg generated phantom: two ellipsoids in noisy MR-like volumes', channel_names: { '0': 'MR' }, labels: { background: 0, anterior: 1, posterior: 2 }, numTraining: count, file_ending: '.nii.gz' }, null, 2)}\n`,
  );
  return dir;
}
