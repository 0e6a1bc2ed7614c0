/** The Jacobian determinant and folding fraction against numpy (np.gradient, np.linalg.det) on a random field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Mat3, Vec3 } from '../io/volume.ts';
import { runPythonJson } from '../testing/python.ts';
import { foldingFraction, jacobianDeterminant } from './jacobian.ts';

const NUMPY = `
import json, sys
import numpy as np
q = json.load(sys.stdin)
nx, ny, nz = q['size']
u = np.array(q['data'], dtype=np.float64).reshape(3, nz, ny, nx)
M = np.array(q['direction']).reshape(3, 3) * np.array(q['spacing'])[None, :]
Minv = np.linalg.inv(M)
# G[c, a]: derivative of component c along index axis a (x, y, z), numpy's central/one-sided rule
G = np.stack([np.stack(np.gradient(u[c], axis=(2, 1, 0)), 0) for c in range(3)], 0)
J = np.eye(3)[:, :, None, None, None] + np.einsum('cazyx,ab->cbzyx', G, Minv)
det = np.linalg.det(np.moveaxis(J, (0, 1), (-2, -1)))
print(json.dumps({'det': det.ravel().tolist(), 'folding': float(np.mean(det <= 0))}))
`;

function field(size: Vec3, seed: number, amplitude: number): Float64Array {
  let s = seed;
  const out = new Float64Array(3 * size[0] * size[1] * size[2]);
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = amplitude * (s / 2147483648 - 0.5);
  }
  return out;
}

test('Jacobian determinant and folding fraction match numpy on random fields (voxel axes, and a rotated anisotropic grid)', () => {
  const size: Vec3 = [6, 5, 4];
  const c = Math.cos(0.5);
  const s = Math.sin(0.5);
  const cases: { spacing: Vec3; direction: Mat3 }[] = [
    { spacing: [1, 1, 1], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] },
    { spacing: [0.8, 1.2, 2], direction: [c, -s, 0, s, c, 0, 0, 0, -1] },
  ];
  for (const [k, g] of cases.entries()) {
    const data = field(size, 7 + k, 2.4);
    const det = jacobianDeterminant({ data, size, ...g });
    const ref = runPythonJson<{ det: number[]; folding: number }>(['-c', NUMPY], { size, data: Array.from(data), ...g });
    assert.equal(det.length, ref.det.length);
    for (let i = 0; i < det.length; i++)
      assert.ok(Math.abs(det[i]! - ref.det[i]!) < 1e-9 * Math.max(1, Math.abs(ref.det[i]!)), `voxel ${i}: ${det[i]} vs ${ref.det[i]}`);
    const folding = foldingFraction(det);
    assert.equal(folding, ref.folding);
    assert.ok(folding > 0.05 && folding < 0.95, `the random field folds ${folding} of the voxels: the check must see both signs`);
  }
});

test('an identity transform has determinant 1 everywhere and folds nothing; a mask restricts the count', () => {
  const size: Vec3 = [3, 3, 3];
  const det = jacobianDeterminant({ data: new Float32Array(81), size, spacing: [1, 1, 1] });
  assert.ok(det.every((d) => d === 1));
  assert.equal(foldingFraction(det), 0);
  assert.equal(foldingFraction([1, -1, 0, 2], [1, 1, 0, 0]), 0.5);
  assert.throws(() => jacobianDeterminant({ data: new Float32Array(80), size, spacing: [1, 1, 1] }), /needs 81 values/);
});
