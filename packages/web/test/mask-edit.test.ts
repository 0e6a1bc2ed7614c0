/**
 * The viewer's own mask edits against hand-made and brute-force references:
 * the Euclidean distance transform against every pixel pair, shape-based
 * interpolation of a label between two slices, the slices a stroke changed,
 * and a 2D stroke made spherical.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changedSlices, distanceTo, extendStroke3d, interpolateLabel, sliceGeometry, type Dims } from '../src/mask-edit.ts';

test('the distance transform is the exact Euclidean distance to the nearest feature pixel', () => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const w = 13;
  const h = 9;
  const feature = Array.from({ length: w * h }, () => rand() < 0.08);
  const d = distanceTo((i) => feature[i]!, w, h);
  for (let i = 0; i < w * h; i++) {
    let best = Infinity;
    for (let j = 0; j < w * h; j++) if (feature[j]) best = Math.min(best, Math.hypot((i % w) - (j % w), Math.floor(i / w) - Math.floor(j / w)));
    assert.ok(Math.abs(d[i]! - best) < 1e-9, `pixel ${i}: ${d[i]} vs ${best}`);
  }
  assert.ok(distanceTo(() => false, 3, 3).every((v) => v === Infinity));
});

function disk(bitmap: Uint8Array, dims: Dims, z: number, cx: number, cy: number, r: number, label: number): void {
  for (let y = 0; y < dims[1]; y++)
    for (let x = 0; x < dims[0]; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) bitmap[x + dims[0] * (y + dims[1] * z)] = label;
}

const count = (b: Uint8Array, dims: Dims, z: number, label: number) => {
  let n = 0;
  for (let i = 0; i < dims[0] * dims[1]; i++) if (b[i + z * dims[0] * dims[1]] === label) n++;
  return n;
};

test('a label interpolated between two slices: the same shape stays, a growing disk grows, other labels stay', () => {
  const dims: Dims = [20, 20, 5];
  const b = new Uint8Array(20 * 20 * 5);
  for (const z of [0, 4]) for (let y = 5; y < 9; y++) for (let x = 6; x < 11; x++) b[x + 20 * (y + 20 * z)] = 2;
  // Label 1 on slice 2 where the rectangle will go: not overwritten.
  b[7 + 20 * (6 + 20 * 2)] = 1;
  assert.equal(interpolateLabel(b, dims, 2, 2, 4, 0), 3 * 20 - 1);
  for (const z of [1, 3]) assert.equal(count(b, dims, z, 2), 20);
  assert.equal(count(b, dims, 2, 2), 19);
  assert.equal(b[7 + 20 * (6 + 20 * 2)], 1, 'another label is left alone');

  const c = new Uint8Array(20 * 20 * 5);
  disk(c, dims, 0, 10, 10, 2, 1);
  disk(c, dims, 4, 10, 10, 6, 1);
  interpolateLabel(c, dims, 2, 1, 0, 4);
  const areas = [0, 1, 2, 3, 4].map((z) => count(c, dims, z, 1));
  for (let z = 1; z < 5; z++) assert.ok(areas[z]! > areas[z - 1]!, `areas grow: ${areas}`);
  // The middle slice is close to the disk of the middle radius (4: 49 pixels).
  assert.ok(Math.abs(areas[2]! - 49) <= 8, `middle area ${areas[2]}`);
  // A label on one side only shrinks to nothing towards the other.
  const e = new Uint8Array(20 * 20 * 5);
  disk(e, dims, 0, 10, 10, 5, 3);
  interpolateLabel(e, dims, 2, 3, 0, 4);
  const shrinking = [0, 1, 2, 3, 4].map((z) => count(e, dims, z, 3));
  assert.ok(shrinking[1]! < shrinking[0]! && shrinking[3]! < shrinking[1]! && shrinking[4] === 0, `${shrinking}`);
  assert.throws(() => interpolateLabel(e, dims, 2, 3, 0, 5), /outside 0\.\.4/);
});

test('the slices a stroke changed, across each axis', () => {
  const dims: Dims = [4, 3, 2];
  const before = new Uint8Array(24);
  const after = before.slice();
  after[1 + 4 * (2 + 3 * 1)] = 2; // x 1, y 2, z 1
  after[3] = 1; // x 3, y 0, z 0
  assert.deepEqual([...changedSlices(before, after, dims, 2)].sort(), [
    [0, new Set([1])],
    [1, new Set([2])],
  ]);
  assert.deepEqual([...changedSlices(before, after, dims, 0).keys()].sort(), [1, 3]);
  const g = sliceGeometry(dims, 1);
  assert.equal(g.index(2, 1, 1), 1 + 4 * (2 + 3 * 1));
});

test('a 2D stroke of radius 3 becomes a ball: narrower one and two slices away, its centre line three away, nothing beyond', () => {
  const dims: Dims = [30, 20, 9];
  const before = new Uint8Array(30 * 20 * 9);
  const after = before.slice();
  // A horizontal stroke on slice 4: disks of radius 3 along y = 10, x = 8..20.
  for (let cx = 8; cx <= 20; cx++) disk(after, dims, 4, cx, 10, 3, 1);
  const rows = (z: number) => {
    const ys = new Set<number>();
    for (let y = 0; y < 20; y++) for (let x = 0; x < 30; x++) if (after[x + 30 * (y + 20 * z)] === 1) ys.add(y);
    return [...ys].sort((a, b) => a - b);
  };
  assert.deepEqual(rows(4), [7, 8, 9, 10, 11, 12, 13]);
  assert.ok(extendStroke3d(before, after, dims, 2, 4, 1, 3) > 0);
  // Sections of radius sqrt(8) and sqrt(5) one and two slices away: rows 10 +- 2; three away, the centre line; four away, nothing.
  for (const z of [3, 5, 2, 6]) assert.deepEqual(rows(z), [8, 9, 10, 11, 12], `slice ${z}`);
  for (const z of [1, 7]) assert.deepEqual(rows(z), [10], `slice ${z}`);
  for (const z of [0, 8]) assert.deepEqual(rows(z), [], `slice ${z}`);
});
