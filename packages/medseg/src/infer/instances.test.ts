import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isbiBoundaryMap } from '../testing/isbi-boundary.ts';
import { runPythonJson } from '../testing/python.ts';
import { cellsFromBoundaries, instancesOfClass, watershed } from './instances.ts';

test('watershed on a hand-built line: two basins meet at the ridge; the mask and unreachable voxels stay 0', () => {
  //            0    1    2    3    4    5    6    7
  const elev = [0.1, 0.2, 0.3, 0.9, 0.4, 0.2, 0.1, 0.5];
  const markers = [1, 0, 0, 0, 0, 0, 2, 0];
  // Basin 1 reaches the ridge (3) from 2 at 0.3 before basin 2 gets there from 4 at 0.4.
  assert.deepEqual(Array.from(watershed(elev, markers, [8, 1, 1])), [1, 1, 1, 1, 2, 2, 2, 2]);
  const mask = [1, 1, 1, 0, 1, 1, 1, 1];
  assert.deepEqual(Array.from(watershed(elev, markers, [8, 1, 1], mask)), [1, 1, 1, 0, 2, 2, 2, 2]);
  assert.deepEqual(Array.from(watershed(elev, [1, 0, 0, 0, 0, 0, 0, 0], [8, 1, 1], mask)), [1, 1, 1, 0, 0, 0, 0, 0]);
  assert.throws(() => watershed([1], [1, 2], [2, 1, 1]), /2 voxels/);
});

const SKIMAGE = `
import json, sys, numpy as np
from scipy import ndimage
from skimage.segmentation import watershed
d = json.load(sys.stdin)
h, w = d["shape"]
cells = np.array(d["mask"]).reshape(h, w) >= 128
_, n_cells = ndimage.label(cells)
elev = np.array(d["elevation"], dtype=np.float64).reshape(h, w)
markers, _ = ndimage.label(elev <= 0.05)
masked = watershed(elev, markers, connectivity=1, mask=elev < 0.5)
rest, _ = ndimage.label((masked == 0) & (elev < 0.5))
masked[rest > 0] = rest[rest > 0] + masked.max()
print(json.dumps({"cells": int(n_cells), "ws": watershed(elev, markers, connectivity=1).ravel().tolist(),
  "masked": masked.ravel().tolist()}))
`;

test('cells from boundaries: a mask region without a seed is a cell of its own, numbered after the flooded ones', () => {
  //              0    1    2    3    4    5    6    7    8
  const boundary = [0.05, 0.2, 0.3, 0.9, 0.3, 0.2, 0.9, 0.4, 0.05];
  // seeds at 0 and 8; 4-5 is a region between boundaries that no seed reaches
  assert.deepEqual(Array.from(cellsFromBoundaries(boundary, [9, 1, 1], { seedBelow: 0.1, maskBelow: 0.5 })), [1, 1, 1, 0, 3, 3, 0, 2, 2]);
  // without a mask, flooding reaches every voxel from the seeds
  assert.ok(Array.from(cellsFromBoundaries(boundary, [9, 1, 1], { seedBelow: 0.1 })).every((v) => v === 1 || v === 2));
});

test('on a real ISBI 2012 slice: cells as components match SciPy; the watershed of a boundary map matches scikit-image', () => {
  const { w, h, mask, elevation } = isbiBoundaryMap(0);
  const size: [number, number, number] = [w, h, 1];
  const ref = runPythonJson<{ cells: number; ws: number[]; masked: number[] }>(['-c', SKIMAGE], { shape: [h, w], mask, elevation: Array.from(elevation) });
  const cells = instancesOfClass(
    Uint8Array.from(mask, (v) => (v >= 128 ? 1 : 0)),
    size,
    1,
  );
  assert.equal(
    cells.reduce((a, v) => Math.max(a, v), 0),
    ref.cells,
  );
  for (const [ours, theirs, what] of [
    [cellsFromBoundaries(elevation, size, { seedBelow: 0.05 }), ref.ws, 'watershed'],
    [cellsFromBoundaries(elevation, size, { seedBelow: 0.05, maskBelow: 0.5 }), ref.masked, 'masked watershed'],
  ] as const) {
    let same = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] === theirs[i]) same++;
    // Equal elevations flood first-in first-out in both; neighbours may be queued in another order, which moves a few plateau pixels.
    assert.ok(same / ours.length > 0.995, `${what}: ${((100 * same) / ours.length).toFixed(3)}% of pixels agree with scikit-image`);
    console.log(`${what}: ${((100 * same) / ours.length).toFixed(3)}% of pixels agree with scikit-image`);
  }
});
