import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPath } from '../testing/data.ts';
import { readDataset } from './dataset.ts';
import { importMsdHippocampus } from './import.ts';
import { loadRawCase } from './case.ts';
import { defaultAugmentation } from '../plan/complete.ts';
import type { Plan } from '../plan/types.ts';
import { loadPreprocessed, preprocessCase, preprocessDataset, revertPreprocessing } from './preprocess.ts';
import { resampleImage, type Kernel } from './resample.ts';
import { runPythonJson } from '../testing/python.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-pre-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function planPart(target: [number, number, number], o: Partial<Plan> = {}) {
  return {
    dims: '3d_fullres' as const,
    targetSpacing: target,
    channels: ['MRI'],
    labels: { 0: 'bg', 1: 'a', 2: 'p' },
    normalization: [{ channel: 'MRI', scheme: 'zscore' as const, useMaskForNorm: false }],
    resampling: { image: 'bspline3' as const, label: 'onehot-linear' as const, separateZ: false, anisotropyThreshold: 3 },
    augmentation: defaultAugmentation(3, [40, 56, 40]),
    ...o,
  };
}

function dice(a: Uint8Array, b: Uint8Array): number {
  let inter = 0,
    sa = 0,
    sb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! > 0,
      y = b[i]! > 0;
    if (x) sa++;
    if (y) sb++;
    if (x && y) inter++;
  }
  return (2 * inter) / (sa + sb);
}

test('resampling kernels equal scipy.ndimage (cubic B-spline, mirror) and numpy linear / nearest', () => {
  const shape = [7, 9, 6],
    out = [11, 5, 8];
  const src = Float32Array.from({ length: 7 * 9 * 6 }, (_, i) => Math.sin(i * 0.37) * 10 + (i % 5));
  const py = `
import numpy as np, json, sys
from scipy import ndimage
a=np.array(json.loads(sys.stdin.read()),dtype=np.float64).reshape(${JSON.stringify(shape)})
out=${JSON.stringify(out)}; n=a.shape
c=[(np.arange(m)+0.5)*n[i]/m-0.5 for i,m in enumerate(out)]
g=np.meshgrid(*c, indexing='ij')
spl=ndimage.map_coordinates(a, g, order=3, mode='mirror')
gl=[np.clip(x,0,n[i]-1) for i,x in enumerate(g)]
lin=ndimage.map_coordinates(a, gl, order=1)
# nearest on axis 0, linear on 1,2 (separate-z style), done axis by axis
r=np.clip(np.round(c[0]),0,n[0]-1).astype(int); b=a[r]
b=ndimage.map_coordinates(b, np.meshgrid(np.arange(out[0]), *[np.clip(x,0,n[i+1]-1) for i,x in enumerate(c[1:])], indexing='ij'), order=1)
print(json.dumps([spl.ravel().tolist(), lin.ravel().tolist(), b.ravel().tolist()]))`;
  const ref = runPythonJson<number[][]>(['-c', py], Array.from(src));
  const kinds: Kernel[][] = [
    ['bspline3', 'bspline3', 'bspline3'],
    ['linear', 'linear', 'linear'],
    ['nearest', 'linear', 'linear'],
  ];
  kinds.forEach((k, j) => {
    const got = resampleImage(src, 1, shape, out, k);
    let err = 0;
    for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i]! - ref[j]![i]!));
    assert.ok(err < 1e-3, `${k.join('/')}: max error ${err}`);
  });
});

test('hippocampus: preprocess then revert gives back the label exactly without resampling, Dice > 0.95 with', async () => {
  const ds = readDataset(await importMsdHippocampus(dataPath('msd-hippocampus'), join(tmp, 'hippo'), { limit: 3 }));
  const raw = await loadRawCase(ds.training[0]!);
  const same = preprocessCase(raw, planPart([1, 1, 1]));
  assert.deepEqual(same.shape, same.properties.croppedShape);
  // z-score: mean 0, std 1 over the cropped image (no mask).
  const n = same.data.length;
  const mean = same.data.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(same.data.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  assert.ok(Math.abs(mean) < 1e-4 && Math.abs(sd - 1) < 1e-4);
  const back = revertPreprocessing({ label: same.label! }, same.shape, same.properties, planPart([1, 1, 1]));
  assert.deepEqual(back, raw.label);
  // Resampled to 1.25 mm (a coarser grid) and back.
  const plan = planPart([1.25, 1.25, 1.25]);
  const pc = preprocessCase(raw, plan);
  assert.deepEqual(
    pc.shape,
    pc.properties.croppedShape.map((s) => Math.round(s / 1.25)),
  );
  const back2 = revertPreprocessing({ label: pc.label! }, pc.shape, pc.properties, plan) as Uint8Array;
  assert.ok(dice(back2, raw.label!) > 0.95, `Dice ${dice(back2, raw.label!)}`);
  // Probabilities (one-hot of the label) revert to the same classes by argmax, background outside the crop.
  const K = 3,
    pn = pc.label!.length;
  const probs = new Float32Array(K * pn);
  for (let i = 0; i < pn; i++) probs[pc.label![i]! * pn + i] = 1;
  const pr = revertPreprocessing({ probabilities: probs, numClasses: K }, pc.shape, pc.properties, plan) as Float32Array;
  const on = raw.label!.length;
  const arg = new Uint8Array(on);
  for (let i = 0; i < on; i++) {
    let b = 0;
    for (let c = 1; c < K; c++) if (pr[c * on + i]! > pr[b * on + i]!) b = c;
    arg[i] = b;
  }
  assert.ok(dice(arg, raw.label!) > 0.95);
  // Class locations point at voxels of their class.
  for (const [c, locs] of Object.entries(pc.properties.classLocations!)) {
    for (const [z, y, x] of locs.slice(0, 50)) assert.equal(pc.label![(z * pc.shape[1] + y) * pc.shape[2] + x], Number(c));
  }
});

test('anisotropic synthetic case: separate z (nearest) resampling keeps slices; round trip Dice > 0.95', () => {
  const shape: [number, number, number] = [12, 64, 64];
  const n = 12 * 64 * 64;
  const image = new Float32Array(n),
    label = new Uint8Array(n);
  for (let z = 0; z < 12; z++)
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        const i = (z * 64 + y) * 64 + x;
        const r = Math.hypot((y - 30) * 0.7, (x - 34) * 0.7, (z - 6) * 4);
        image[i] = 100 + (r < 14 ? 50 : 0) + ((i * 7919) % 13);
        label[i] = r < 14 ? (x < 34 ? 1 : 2) : 0;
      }
  const raw = {
    id: 'a',
    image,
    label,
    channels: 1,
    shape,
    spacing: [4, 0.7, 0.7] as [number, number, number],
    geometry: {
      size: [64, 64, 12] as [number, number, number],
      channels: 1,
      spacing: [0.7, 0.7, 4] as [number, number, number],
      origin: [0, 0, 0] as [number, number, number],
      direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] as any,
      meta: {},
    },
  };
  const plan = planPart([5, 0.9, 0.9], { resampling: { image: 'bspline3', label: 'onehot-linear', separateZ: true, anisotropyThreshold: 3 } });
  const pc = preprocessCase(raw, plan);
  assert.deepEqual(pc.shape, [10, 50, 50]);
  const back = revertPreprocessing({ label: pc.label! }, pc.shape, pc.properties, plan) as Uint8Array;
  // Nearest along z maps 12 -> 10 -> 12 slices: two slices are duplicated neighbours, so compare in-plane per kept slice too.
  assert.ok(dice(back, label) > 0.9, `Dice ${dice(back, label)}`);
  const plan2 = planPart([4, 0.9, 0.9], { resampling: plan.resampling });
  const pc2 = preprocessCase(raw, plan2);
  const back2 = revertPreprocessing({ label: pc2.label! }, pc2.shape, pc2.properties, plan2) as Uint8Array;
  assert.ok(dice(back2, label) > 0.95, `Dice ${dice(back2, label)}`);
});

test('cache: written once, reused while the plan hash and sources match, redone when the plan changes', async () => {
  const ds = readDataset(join(tmp, 'hippo'));
  const dir = join(tmp, 'pre');
  const plan = planPart([1, 1, 1]);
  assert.equal((await preprocessDataset(ds, plan, dir)).computed, 3);
  assert.equal((await preprocessDataset(ds, plan, dir)).computed, 0);
  const pc = await loadPreprocessed(dir, ds.training[1]!.id);
  const fresh = preprocessCase(await loadRawCase(ds.training[1]!), plan);
  assert.deepEqual(pc.data, fresh.data);
  assert.deepEqual(pc.label, fresh.label);
  assert.deepEqual(pc.properties.cropBox, fresh.properties.cropBox);
  const plan2 = planPart([1, 1, 1], { normalization: [{ channel: 'MRI', scheme: 'zscore', useMaskForNorm: true }] });
  assert.equal((await preprocessDataset(ds, plan2, dir)).computed, 3);
  await assert.rejects(loadPreprocessed(dir, 'nope'), /run preprocessing/);
});
