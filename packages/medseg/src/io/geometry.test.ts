import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MedsegIoError } from './errors.ts';
import { seededRandom } from '../util/random.ts';
import {
  checkGeometry,
  composeAffine,
  decomposeAffine,
  flipLpsRas,
  orientationCode,
  reorient,
  reorientFromCanonical,
  reorientToCanonical,
  voxelToWorld,
} from './geometry.ts';
import type { Mat3, Vec3, Volume } from './volume.ts';
import { runPythonJson } from '../testing/python.ts';

/** Random rotation (from a random unit quaternion) times a random axis permutation/flip. */
function randomDirection(r: () => number, oblique: number): Mat3 {
  let [a, b, c, d] = [1, (r() - 0.5) * oblique, (r() - 0.5) * oblique, (r() - 0.5) * oblique];
  const n = Math.hypot(a, b, c, d);
  [a, b, c, d] = [a / n, b / n, c / n, d / n];
  const R = [
    a * a + b * b - c * c - d * d,
    2 * (b * c - a * d),
    2 * (b * d + a * c),
    2 * (b * c + a * d),
    a * a + c * c - b * b - d * d,
    2 * (c * d - a * b),
    2 * (b * d - a * c),
    2 * (c * d + a * b),
    a * a + d * d - b * b - c * c,
  ];
  const perms = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ];
  const p = perms[Math.floor(r() * 6)]!;
  const sg = [r() < 0.5 ? -1 : 1, r() < 0.5 ? -1 : 1, r() < 0.5 ? -1 : 1];
  const out = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) out[i * 3 + j] = R[i * 3 + p[j]!]! * sg[j]!;
  return out as Mat3;
}

function randomVolume(r: () => number, channels = 2): Volume {
  const size: Vec3 = [2 + Math.floor(r() * 4), 2 + Math.floor(r() * 4), 2 + Math.floor(r() * 4)];
  const n = size[0] * size[1] * size[2] * channels;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = i;
  return {
    data,
    size,
    channels,
    spacing: [0.5 + r() * 2, 0.5 + r() * 2, 0.5 + r() * 3],
    origin: [(r() - 0.5) * 200, (r() - 0.5) * 200, (r() - 0.5) * 200],
    direction: randomDirection(r, 0.6),
    meta: {},
  };
}

const close = (a: readonly number[], b: readonly number[], tol = 1e-9) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]!) <= tol);

test('decompose(compose(g)) is identity, LPS<->RAS is an involution', () => {
  const r = seededRandom(1);
  for (let k = 0; k < 50; k++) {
    const v = randomVolume(r);
    const a = composeAffine(v);
    const g = decomposeAffine(a);
    assert.ok(close(g.spacing, v.spacing), 'spacing');
    assert.ok(close(g.origin, v.origin), 'origin');
    assert.ok(close(g.direction, v.direction), 'direction');
    assert.deepEqual(flipLpsRas(flipLpsRas(a)), a);
    const ras = flipLpsRas(a);
    assert.equal(ras[0], -a[0]!);
    assert.equal(ras[7], -a[7]!);
    assert.equal(ras[11], a[11]);
  }
});

test('degenerate geometry is BAD_GEOMETRY', () => {
  const isBad = (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY';
  const base = { origin: [0, 0, 0] as Vec3, direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3 };
  for (const spacing of [
    [0, 1, 1],
    [1, -1, 1],
    [1, 1, NaN],
    [1, Infinity, 1],
  ] as Vec3[]) {
    assert.throws(() => checkGeometry({ ...base, spacing }), isBad, `spacing ${spacing}`);
  }
  assert.throws(() => decomposeAffine([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), isBad);
  assert.throws(() => decomposeAffine([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), isBad); // parallel axes
  assert.throws(() => decomposeAffine([NaN, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), isBad);
  // zero z column on a one-slice image is completed, not rejected
  const g = decomposeAffine([2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [4, 4, 1]);
  assert.deepEqual(g.spacing, [2, 3, 1]);
  assert.deepEqual(
    g.direction.map((x) => x + 0),
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
  );
});

test('reorient keeps every voxel at its world position; round trip is identity', () => {
  const r = seededRandom(7);
  for (let k = 0; k < 40; k++) {
    const v = randomVolume(r);
    for (const code of ['RAS', 'LPS', 'AIL', 'SPR']) {
      const out = reorient(v, code);
      assert.equal(orientationCode(out.direction), code);
      assert.equal(out.data.length, v.data.length);
      // every voxel of every channel: same value at the same world point
      const [nx, ny, nz] = out.size;
      const nvo = nx * ny * nz;
      const a = composeAffine(v);
      const inv = invert4(a);
      for (let c = 0; c < v.channels; c++) {
        for (let z = 0; z < nz; z++)
          for (let y = 0; y < ny; y++)
            for (let x = 0; x < nx; x++) {
              const w = voxelToWorld(out, [x, y, z]);
              const ijk = [0, 1, 2].map((rr) => Math.round(inv[rr * 4]! * w[0] + inv[rr * 4 + 1]! * w[1] + inv[rr * 4 + 2]! * w[2] + inv[rr * 4 + 3]!));
              const vin = v.data[ijk[0]! + v.size[0] * (ijk[1]! + v.size[1] * (ijk[2]! + v.size[2] * c))];
              assert.equal(out.data[x + nx * (y + ny * (z + nz * c))], vin);
            }
      }
      void nvo;
      // corners: world positions of the 8 corners are the same set
      const corners = (vol: Volume) =>
        [0, 1, 2, 3, 4, 5, 6, 7]
          .map((m) =>
            voxelToWorld(vol, [m & 1 ? vol.size[0] - 1 : 0, m & 2 ? vol.size[1] - 1 : 0, m & 4 ? vol.size[2] - 1 : 0])
              .map((q) => q.toFixed(6))
              .join(','),
          )
          .sort();
      assert.deepEqual(corners(out), corners(v));
      const back = code === 'RAS' ? reorientFromCanonical(out, orientationCode(v.direction)) : reorient(out, orientationCode(v.direction));
      assert.deepEqual(back.size, v.size);
      assert.deepEqual(Array.from(back.data), Array.from(v.data));
      assert.ok(close(back.origin, v.origin, 1e-9) && close(back.direction, v.direction) && close(back.spacing, v.spacing));
    }
  }
});

function invert4(m: number[]): number[] {
  // affine inverse via 3x3 inverse
  const a = [m[0]!, m[1]!, m[2]!, m[4]!, m[5]!, m[6]!, m[8]!, m[9]!, m[10]!];
  const det = a[0]! * (a[4]! * a[8]! - a[5]! * a[7]!) - a[1]! * (a[3]! * a[8]! - a[5]! * a[6]!) + a[2]! * (a[3]! * a[7]! - a[4]! * a[6]!);
  const inv = [
    (a[4]! * a[8]! - a[5]! * a[7]!) / det,
    (a[2]! * a[7]! - a[1]! * a[8]!) / det,
    (a[1]! * a[5]! - a[2]! * a[4]!) / det,
    (a[5]! * a[6]! - a[3]! * a[8]!) / det,
    (a[0]! * a[8]! - a[2]! * a[6]!) / det,
    (a[2]! * a[3]! - a[0]! * a[5]!) / det,
    (a[3]! * a[7]! - a[4]! * a[6]!) / det,
    (a[1]! * a[6]! - a[0]! * a[7]!) / det,
    (a[0]! * a[4]! - a[1]! * a[3]!) / det,
  ];
  const t = [m[3]!, m[7]!, m[11]!];
  const out: number[] = [];
  for (let r = 0; r < 3; r++)
    out.push(inv[r * 3]!, inv[r * 3 + 1]!, inv[r * 3 + 2]!, -(inv[r * 3]! * t[0]! + inv[r * 3 + 1]! * t[1]! + inv[r * 3 + 2]! * t[2]!));
  return out.concat([0, 0, 0, 1]);
}

test('orientation codes and RAS canonical voxels match nibabel (aff2axcodes, as_closest_canonical)', () => {
  const r = seededRandom(11);
  const cases = Array.from({ length: 20 }, () => randomVolume(r, 1));
  const py = `
import sys, json, numpy as np, nibabel as nib
out = []
for c in json.load(sys.stdin):
    aff = np.array(c['ras']).reshape(4, 4)
    shape = c['size']
    data = np.array(c['data'], dtype=np.float32).reshape(shape[::-1]).T  # x-fastest -> (x,y,z)
    img = nib.Nifti1Image(data, aff)
    can = nib.as_closest_canonical(img)
    d = np.asanyarray(can.dataobj)
    out.append({'code': ''.join(nib.aff2axcodes(aff)), 'canAff': can.affine.ravel().tolist(),
                'shape': list(d.shape), 'canData': d.T.ravel().tolist()})
print(json.dumps(out))
`;
  const input = cases.map((v) => ({ ras: flipLpsRas(composeAffine(v)), size: v.size, data: Array.from(v.data) }));
  const ref = runPythonJson<
    Array<{
      code: string;
      canAff: number[];
      shape: number[];
      canData: number[];
    }>
  >(['-c', py], input);
  cases.forEach((v, i) => {
    assert.equal(orientationCode(v.direction), ref[i]!.code);
    const can = reorientToCanonical(v, 'RAS');
    assert.deepEqual(can.size, ref[i]!.shape);
    assert.ok(close(flipLpsRas(composeAffine(can)), ref[i]!.canAff, 1e-6), 'canonical affine');
    assert.deepEqual(Array.from(can.data), ref[i]!.canData);
  });
});
