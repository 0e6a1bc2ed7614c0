/**
 * HD95 + surface Dice on a 256^3 pair of masks (two overlapping ellipsoids with
 * wavy surfaces, anisotropic spacing): medseg vs the SciPy reference with the
 * same definitions (crop to the union's bounding box, mask ^ binary_erosion,
 * distance_transform_edt(sampling=spacing), MONAI's HD95 and surface Dice),
 * in the same run, median of 3 each. Writes bench/results/metrics.json.
 *
 *   npm run bench -- metrics
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Vec3 } from '../packages/medseg/src/io/volume.ts';
import { labelSurfaceMetrics } from '../packages/medseg/src/eval/metrics.ts';
import { scipyReference, writeRaw } from '../packages/medseg/src/testing/metrics-reference.ts';

const here = dirname(fileURLToPath(import.meta.url));
const N = 256;
const SIZE: Vec3 = [N, N, N];
const SPACING: Vec3 = [0.8, 0.8, 1.5];
const TAU = 1.5;
const ROUNDS = 3;

/** Ellipsoid whose radius is modulated by a few spherical waves (a "perturbed surface"). */
function ellipsoid(c: Vec3, r: Vec3, wave: number, phase: number): Uint8Array {
  const m = new Uint8Array(N * N * N);
  let i = 0;
  for (let z = 0; z < N; z++)
    for (let y = 0; y < N; y++)
      for (let x = 0; x < N; x++, i++) {
        const u = (x - c[0]) / r[0],
          v = (y - c[1]) / r[1],
          w = (z - c[2]) / r[2];
        const rho = Math.sqrt(u * u + v * v + w * w);
        const theta = Math.atan2(v, u),
          phi = Math.acos(rho ? w / rho : 0);
        if (rho <= 1 + wave * Math.sin(5 * theta + phase) * Math.sin(3 * phi)) m[i] = 1;
      }
  return m;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;

export async function run(): Promise<{ medseg_s: number; scipy_s: number; ratio: number }> {
  const pred = ellipsoid([128, 126, 130], [92, 74, 60], 0.06, 0.3);
  const ref = ellipsoid([122, 131, 127], [88, 78, 64], 0.04, 1.1);
  const times: number[] = [];
  let result = labelSurfaceMetrics(pred, ref, { size: SIZE, spacing: SPACING }, 1, TAU);
  for (let k = 0; k < ROUNDS; k++) {
    const t0 = performance.now();
    result = labelSurfaceMetrics(pred, ref, { size: SIZE, spacing: SPACING }, 1, TAU);
    times.push((performance.now() - t0) / 1000);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-bench-metrics-'));
  let scipy: { times: number[]; hd95: number; surfaceDice: number };
  try {
    scipy = scipyReference('bench', {
      pred: writeRaw(join(tmp, 'pred.u8'), pred),
      ref: writeRaw(join(tmp, 'ref.u8'), ref),
      shape: SIZE,
      spacing: SPACING,
      tau: TAU,
      rounds: ROUNDS,
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Same numbers or the timing means nothing.
  if (Math.abs(scipy.hd95 - result.hd95) > 1e-3 || Math.abs(scipy.surfaceDice - result.surfaceDice) > 1e-9) {
    throw new Error(`medseg and SciPy disagree: hd95 ${result.hd95} vs ${scipy.hd95}, surface Dice ${result.surfaceDice} vs ${scipy.surfaceDice}`);
  }
  const medseg_s = median(times);
  const scipy_s = median(scipy.times);
  const out = { medseg_s, scipy_s, ratio: medseg_s / scipy_s };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(
    join(here, 'results', 'metrics.json'),
    JSON.stringify(
      {
        ...out,
        command: 'npm run bench -- metrics',
        what: `HD95 + surface Dice (tau ${TAU} mm), one label, ${N}^3 wavy ellipsoids, spacing ${SPACING.join('x')} mm, median of ${ROUNDS}`,
        peer: 'SciPy distance_transform_edt + binary_erosion + numpy.percentile (MONAI definitions), /usr/bin/python3',
        hd95_mm: result.hd95,
        surfaceDice: result.surfaceDice,
        medseg_rounds_s: times,
        scipy_rounds_s: scipy.times,
        node: process.version,
        date: new Date().toISOString(),
      },
      null,
      2,
    ) + '\n',
  );
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) console.log(await run());

/** `npm run bench -- metrics` (bench/run.ts contract). */
export async function main(): Promise<void> {
  console.log(await run());
}
