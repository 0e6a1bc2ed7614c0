/**
 * Affine registration of a synthetic volume moved by a known rotation,
 * scaling and translation (the moving image is the fixed one's analytic
 * intensity function pulled through the inverse map, on a grid of its own)
 * recovers the map's 12 parameters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { affineLPS, IDENTITY3, type Vec3 } from '../io/volume.ts';
import { registerAffine } from './affine.ts';
import { gridCentre, invertAffine4, matmul4, type GridGeometry, type Mat4 } from './grid.ts';

const IDENTITY4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

/** Anisotropic Gaussian blobs at world points: an image with no symmetry an affine could exploit. */
function intensity(p: readonly number[]): number {
  const blobs = [
    [8, 9, 7, 3, 2, 2.5],
    [13, 15, 10, 2, 3.5, 2],
    [10, 14, 5, 2.5, 2, 1.6],
    [6, 16, 11, 1.8, 1.8, 2.8],
  ];
  let v = 0;
  for (const [x, y, z, sx, sy, sz] of blobs) v += Math.exp(-0.5 * (((p[0]! - x!) / sx!) ** 2 + ((p[1]! - y!) / sy!) ** 2 + ((p[2]! - z!) / sz!) ** 2));
  return v;
}

/** The image on a grid whose value at world point q is intensity(worldToSource q). */
function render(g: GridGeometry, worldToSource: Mat4): torch.Tensor {
  const [nx, ny, nz] = g.size;
  const m = matmul4(worldToSource, affineLPS(g));
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const p = [0, 1, 2].map((r) => m[r * 4]! * x + m[r * 4 + 1]! * y + m[r * 4 + 2]! * z + m[r * 4 + 3]!);
        data[(z * ny + y) * nx + x] = intensity(p);
      }
  return torch.tensor(data, [1, 1, nz, ny, nx]);
}

test('affine registration recovers a known rotation, scaling and translation', () => {
  const fixedGrid: GridGeometry = { size: [20, 24, 18], spacing: [1, 1, 1], origin: [0, 0, 0], direction: IDENTITY3 };
  const movingGrid: GridGeometry = { size: [22, 22, 20], spacing: [1, 1.1, 1], origin: [-1, 1, 0.5], direction: IDENTITY3 };
  const c = gridCentre(fixedGrid);
  const [a, b] = [(6 * Math.PI) / 180, (4 * Math.PI) / 180];
  const rz = [Math.cos(a), -Math.sin(a), 0, 0, Math.sin(a), Math.cos(a), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const rx = [1, 0, 0, 0, 0, Math.cos(b), -Math.sin(b), 0, 0, Math.sin(b), Math.cos(b), 0, 0, 0, 0, 1];
  const scale = [1, 0, 0, 0, 0, 1.06, 0, 0, 0, 0, 0.97, 0, 0, 0, 0, 1];
  const t: Vec3 = [1.5, -1, 0.8];
  const translate = (v: readonly number[]) => [1, 0, 0, v[0]!, 0, 1, 0, v[1]!, 0, 0, 1, v[2]!, 0, 0, 0, 1];
  // fixed world point -> moving world point
  const truth = matmul4(translate([c[0] + t[0], c[1] + t[1], c[2] + t[2]]), matmul4(rz, matmul4(rx, matmul4(scale, translate([-c[0], -c[1], -c[2]])))));
  torch.tidy(() => {
    const fixed = { image: render(fixedGrid, IDENTITY4), geometry: fixedGrid };
    const moving = { image: render(movingGrid, invertAffine4(truth)), geometry: movingGrid };
    const r = registerAffine(fixed, moving, { similarity: 'ncc' });
    const linearError = Math.max(...[0, 1, 2, 4, 5, 6, 8, 9, 10].map((i) => Math.abs(r.matrix[i]! - truth[i]!)));
    // where the fixed centre goes, in mm
    const at = (m: Mat4) => [0, 1, 2].map((k) => m[k * 4]! * c[0] + m[k * 4 + 1]! * c[1] + m[k * 4 + 2]! * c[2] + m[k * 4 + 3]!);
    const centreError = Math.hypot(...at(r.matrix).map((v, k) => v - at(truth)[k]!));
    assert.ok(linearError < 0.03, `linear part off by ${linearError}: ${r.matrix.map((v) => v.toFixed(3)).join(' ')}`);
    assert.ok(centreError < 0.3, `the fixed centre lands ${centreError} mm off`);
    assert.ok(r.loss < 0.02, `NCC loss ${r.loss}`);
  });
});
