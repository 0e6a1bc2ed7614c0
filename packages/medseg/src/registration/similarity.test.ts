/**
 * The registration losses against values computed by hand (plain loops in
 * float64, written from the formulas) on tiny tensors, and their gradients
 * against central differences.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { diceLoss, diffusionLoss } from './regularization.ts';
import { localNccLoss, mutualInformationLoss, nccLoss } from './similarity.ts';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const f64 = (data: number[], shape: number[], requiresGrad = false) => torch.tensor(Float64Array.from(data), shape, { dtype: 'float64', requiresGrad });
const random = (n: number, seed: number) => {
  const r = seeded(seed);
  return Array.from({ length: n }, () => r());
};

/** Largest |autograd - central difference| of a scalar loss over every element of x. */
function gradientError(fn: (x: Tensor) => Tensor, data: number[], shape: number[], eps = 1e-6): number {
  const x = f64(data, shape, true);
  const loss = fn(x);
  loss.backward();
  const analytic = x.grad!.toTypedArray() as Float64Array;
  let worst = 0;
  let nonZero = false;
  for (let i = 0; i < data.length; i++) {
    const at = (d: number) =>
      torch.noGrad(() =>
        fn(
          f64(
            data.map((v, j) => (j === i ? v + d : v)),
            shape,
          ),
        ).item(),
      );
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    if (Math.abs(numeric) > 1e-8) nonZero = true;
    worst = Math.max(worst, Math.abs(numeric - analytic[i]!));
  }
  assert.ok(nonZero, 'every numerical gradient is zero: the check proves nothing');
  return worst;
}

test('global NCC loss: 1 - cov / (sd sd) by hand, 0 for a positive linear map of the image', () => {
  const a = random(24, 1);
  const b = random(24, 2);
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(a);
  const mb = mean(b);
  const cov = mean(a.map((x, i) => (x - ma) * (b[i]! - mb)));
  const va = mean(a.map((x) => (x - ma) ** 2));
  const vb = mean(b.map((x) => (x - mb) ** 2));
  const expected = 1 - cov / Math.sqrt(va * vb + 1e-5);
  torch.tidy(() => {
    assert.ok(Math.abs(nccLoss(f64(a, [1, 1, 2, 3, 4]), f64(b, [1, 1, 2, 3, 4])).item() - expected) < 1e-12);
    assert.ok(
      Math.abs(
        nccLoss(
          f64(a, [1, 1, 2, 3, 4]),
          f64(
            a.map((x) => 3 * x + 1),
            [1, 1, 2, 3, 4],
          ),
        ).item(),
      ) < 1e-3,
    );
  });
});

test('local NCC loss (window 3, zero padding): windowed moments by hand', () => {
  const [nz, ny, nx] = [3, 4, 5];
  const a = random(nx * ny * nz, 3);
  const b = random(nx * ny * nz, 4);
  const at = (v: number[], z: number, y: number, x: number) => (z < 0 || y < 0 || x < 0 || z >= nz || y >= ny || x >= nx ? 0 : v[(z * ny + y) * nx + x]!);
  let total = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        let sa = 0,
          sb = 0,
          saa = 0,
          sbb = 0,
          sab = 0;
        for (let dz = -1; dz <= 1; dz++)
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              const p = at(a, z + dz, y + dy, x + dx);
              const q = at(b, z + dz, y + dy, x + dx);
              sa += p;
              sb += q;
              saa += p * p;
              sbb += q * q;
              sab += p * q;
            }
        const w = 27;
        const cov = sab / w - (sa / w) * (sb / w);
        const va = saa / w - (sa / w) ** 2;
        const vb = sbb / w - (sb / w) ** 2;
        total += (cov * cov) / (va * vb + 1e-5);
      }
  const expected = -total / (nx * ny * nz);
  const got = torch.tidy(() => localNccLoss(f64(a, [1, 1, nz, ny, nx]), f64(b, [1, 1, nz, ny, nx]), 3).item());
  assert.ok(Math.abs(got - expected) < 1e-12, `${got} vs ${expected}`);
});

test('mutual information loss: Parzen joint histogram by hand; larger for dependent images', () => {
  const n = 20;
  const bins = 4;
  const sigma = 0.2;
  const a = random(n, 5);
  const b = random(n, 6);
  const centres = Array.from({ length: bins }, (_, k) => k / (bins - 1));
  const weights = (x: number) => {
    const w = centres.map((c) => Math.exp(-((x - c) ** 2) / (2 * sigma * sigma)));
    const s = w.reduce((p, q) => p + q, 0) + 1e-10;
    return w.map((v) => v / s);
  };
  const joint = Array.from({ length: bins }, () => new Array<number>(bins).fill(0));
  for (let i = 0; i < n; i++) {
    const wa = weights(a[i]!);
    const wb = weights(b[i]!);
    for (let p = 0; p < bins; p++) for (let q = 0; q < bins; q++) joint[p]![q]! += (wa[p]! * wb[q]!) / n;
  }
  const pa = joint.map((row) => row.reduce((s, v) => s + v, 0));
  const pb = centres.map((_, q) => joint.reduce((s, row) => s + row[q]!, 0));
  let mi = 0;
  for (let p = 0; p < bins; p++) for (let q = 0; q < bins; q++) mi += joint[p]![q]! * Math.log((joint[p]![q]! + 1e-10) / (pa[p]! * pb[q]! + 1e-10));
  torch.tidy(() => {
    const got = mutualInformationLoss(f64(a, [1, 1, 4, 5]), f64(b, [1, 1, 4, 5]), { bins, sigma }).item();
    assert.ok(Math.abs(got + mi) < 1e-12, `${got} vs ${-mi}`);
    const self = mutualInformationLoss(f64(a, [1, 1, 4, 5]), f64(a, [1, 1, 4, 5]), { bins, sigma }).item();
    assert.ok(self < got - 0.1, `MI of an image with itself (${-self}) exceeds that of independent noise (${-got})`);
  });
});

test('diffusion and Dice losses by hand', () => {
  // a field [1, 1, 1, 2, 3]: differences along x (1, 2) and (0, 4), along y (3, 5, 6)
  const u = [0, 1, 3, 3, 3, 7];
  const dx = [1, 2, 0, 4];
  const dy = [3, 2, 4];
  const expected = dx.reduce((s, d) => s + d * d, 0) / dx.length + dy.reduce((s, d) => s + d * d, 0) / dy.length;
  torch.tidy(() => {
    assert.ok(Math.abs(diffusionLoss(f64(u, [1, 1, 1, 2, 3])).item() - expected) < 1e-12);
    const p = [0.9, 0.2, 0.1, 0.8];
    const q = [1, 0, 0, 1];
    const dice = (2 * (0.9 + 0.8) + 1e-5) / (p.reduce((s, v) => s + v, 0) + 2 + 1e-5);
    assert.ok(Math.abs(diceLoss(f64(p, [1, 1, 2, 2]), f64(q, [1, 1, 2, 2])).item() - (1 - dice)) < 1e-12);
  });
});

test('gradients of NCC, local NCC, MI, diffusion and Dice match central differences', () => {
  const shape = [1, 1, 3, 3, 4];
  const n = 36;
  const other = random(n, 8);
  const b = () => f64(other, shape);
  const cases: [string, (x: Tensor) => Tensor][] = [
    ['ncc', (x) => nccLoss(x, b())],
    ['lncc', (x) => localNccLoss(x, b(), 3)],
    ['mi', (x) => mutualInformationLoss(x, b(), { bins: 6 })],
    ['diffusion', (x) => diffusionLoss(x)],
    ['dice', (x) => diceLoss(x, b())],
  ];
  for (const [name, fn] of cases) {
    const err = torch.tidy(() => gradientError(fn, random(n, 9), shape));
    assert.ok(err < 1e-6, `${name}: gradient off by ${err}`);
  }
});
