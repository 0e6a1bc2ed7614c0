/**
 * The spatial transformer: a warp by a known integer shift moves the voxels
 * exactly; instance optimisation finds a known sub-voxel shift; scaling and
 * squaring agrees with composing 128 small steps; warp gradients match
 * central differences.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { IDENTITY3 } from '../io/volume.ts';
import { registerDeformable } from './deformable.ts';
import { composeDisplacements, integrateVelocity, warp } from './spatial.ts';

const IDENTITY4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

/** A smooth image [1, 1, z, y, x]: three Gaussian blobs, sampled at (x - s). */
function blobs(shape: [number, number, number], shift: [number, number, number] = [0, 0, 0]): Tensor {
  const [nz, ny, nx] = shape;
  const centres = [
    [0.35, 0.4, 0.5, 2.5],
    [0.65, 0.55, 0.4, 2],
    [0.5, 0.7, 0.65, 1.6],
  ];
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        let v = 0;
        for (const [cx, cy, cz, s] of centres) {
          const d2 = (x - shift[0] - cx! * nx) ** 2 + (y - shift[1] - cy! * ny) ** 2 + (z - shift[2] - cz! * nz) ** 2;
          v += Math.exp(-d2 / (2 * s! * s!));
        }
        data[(z * ny + y) * nx + x] = v;
      }
  return torch.tensor(data, [1, 1, nz, ny, nx]);
}

/** A constant displacement field [1, 3, z, y, x] of (x, y, z) voxels. */
function constantField(shape: number[], d: [number, number, number], dtype: 'float32' | 'float64' = 'float32'): Tensor {
  return torch.cat(
    d.map((v) => torch.full([1, 1, ...shape], v, { dtype })),
    1,
  );
}

test('a warp by an integer shift moves every interior voxel exactly', () => {
  torch.tidy(() => {
    const shape: [number, number, number] = [6, 7, 8];
    const img = blobs(shape);
    const out = warp(img, constantField(shape, [2, 0, -1]));
    // out(x, y, z) = img(x + 2, y, z - 1)
    const expected = img.narrow(4, 2, 6).narrow(2, 0, 5);
    const got = out.narrow(4, 0, 6).narrow(2, 1, 5);
    assert.ok(got.sub(expected).abs().max().item() < 1e-5);
    // outside the image the warp samples zeros
    assert.equal(out.narrow(4, 6, 2).abs().max().item(), 0);
  });
});

test('instance optimisation recovers a known sub-voxel shift', () => {
  torch.tidy(() => {
    const shape: [number, number, number] = [16, 16, 16];
    const shift: [number, number, number] = [1.5, -1, 0.75];
    const geometry = {
      size: [16, 16, 16] as [number, number, number],
      spacing: [1, 1, 1] as [number, number, number],
      origin: [0, 0, 0] as [number, number, number],
      direction: IDENTITY3,
    };
    const fixed = { image: blobs(shape), geometry };
    const moving = { image: blobs(shape, shift), geometry };
    const r = registerDeformable(fixed, moving, IDENTITY4, { similarity: 'ncc', smoothness: 5, iterations: 80, lr: 0.1, controlSpacing: 4 });
    const centre = torch.unkeep(r.displacement).narrow(2, 4, 8).narrow(3, 4, 8).narrow(4, 4, 8);
    const mean = centre.mean([0, 2, 3, 4]).toArray();
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(mean[k]! - shift[k]!) < 0.2, `component ${k}: ${mean[k]} vs ${shift[k]}`);
  });
});

test('scaling and squaring: exact for a constant field, and equal to composing 128 small steps of a smooth one', () => {
  torch.tidy(() => {
    const shape = [10, 12, 14];
    const c = constantField(shape, [0.7, -1.2, 0.4]);
    assert.ok(integrateVelocity(c).sub(c).abs().max().item() < 1e-5);

    const [nz, ny, nx] = shape as [number, number, number];
    const data = new Float32Array(3 * nx * ny * nz);
    for (let k = 0; k < 3; k++)
      for (let z = 0; z < nz; z++)
        for (let y = 0; y < ny; y++)
          for (let x = 0; x < nx; x++) data[((k * nz + z) * ny + y) * nx + x] = 1.5 * Math.sin((x + 2 * k) / 3) * Math.cos((y - z) / 4 + k);
    const v = torch.tensor(data, [1, 3, nz, ny, nx]);
    const squared = integrateVelocity(v, 7);
    const step = v.div(128);
    let composed = step;
    for (let i = 1; i < 128; i++) composed = composeDisplacements(composed, step);
    const interior = (t: Tensor) =>
      t
        .narrow(2, 2, nz - 4)
        .narrow(3, 2, ny - 4)
        .narrow(4, 2, nx - 4);
    const diff = interior(squared).sub(interior(composed)).abs().max().item();
    const size = interior(composed).abs().max().item();
    assert.ok(size > 1, `the flow moves voxels by ${size}`);
    assert.ok(diff < 0.05, `scaling and squaring differs from composition by ${diff} voxels`);
  });
});

test('warp gradients (image and displacement) match central differences', () => {
  const shape = [3, 4, 5];
  const n = 60;
  const imgData = Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) + 0.1 * i);
  const dispData = Array.from({ length: 3 * n }, (_, i) => 0.6 * Math.cos(i * 1.3));
  const f64 = (d: number[], s: number[], g = false) => torch.tensor(Float64Array.from(d), s, { dtype: 'float64', requiresGrad: g });
  const weights = f64(
    Array.from({ length: n }, (_, i) => Math.cos(i)),
    [1, 1, ...shape],
  ).keep();
  try {
    const loss = (img: Tensor, disp: Tensor) => warp(img, disp).mul(weights).sum();
    for (const which of [0, 1]) {
      const base = which === 0 ? imgData : dispData;
      const s = which === 0 ? [1, 1, ...shape] : [1, 3, ...shape];
      const analytic = torch.tidy(() => {
        const x = f64(base, s, true);
        const l = which === 0 ? loss(x, f64(dispData, [1, 3, ...shape])) : loss(f64(imgData, [1, 1, ...shape]), x);
        l.backward();
        return Array.from(x.grad!.toTypedArray() as Float64Array);
      });
      const eps = 1e-6;
      let worst = 0;
      for (let i = 0; i < base.length; i++) {
        const at = (d: number) =>
          torch.tidy(() => {
            const x = f64(
              base.map((v, j) => (j === i ? v + d : v)),
              s,
            );
            return (which === 0 ? loss(x, f64(dispData, [1, 3, ...shape])) : loss(f64(imgData, [1, 1, ...shape]), x)).item();
          });
        worst = Math.max(worst, Math.abs((at(eps) - at(-eps)) / (2 * eps) - analytic[i]!));
      }
      assert.ok(worst < 1e-5, `${which === 0 ? 'image' : 'displacement'} gradient off by ${worst}`);
    }
  } finally {
    weights.dispose();
  }
});
