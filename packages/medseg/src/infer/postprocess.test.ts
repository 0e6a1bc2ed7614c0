/**
 * Connected components and keep-largest against scipy.ndimage.label on real
 * masks: hippocampus labels and thresholded MRI (3D), DRIVE vessel masks
 * (2D). The code's connectivity is face adjacency (6 in 3D, 4 in 2D, SciPy's
 * default structure); the full 26/8-neighbourhood must give other components
 * on these masks, so a switch of connectivity would fail the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVolume } from '../io/read.ts';
import { dataPath } from '../testing/data.ts';
import { connectedComponents, keepLargestComponent } from './postprocess.ts';

const SCIPY = `
import sys, json, numpy as np
from scipy import ndimage
path, nz, ny, nx = sys.argv[1], *map(int, sys.argv[2:5])
m = np.fromfile(path, dtype=np.uint8).reshape(nz, ny, nx)
out = {}
for name, conn in (('face', 1), ('full', 3)):
    s = ndimage.generate_binary_structure(3, conn)
    if nz == 1:  # a 2D mask: no neighbours across the (single) slice
        s[0] = False; s[2] = False
    lab, n = ndimage.label(m, structure=s)
    lab.astype(np.int32).tofile(path + '.' + name)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    keep = (lab == (np.argmax(sizes) + 1)) if n else np.zeros_like(m, bool)
    keep.astype(np.uint8).tofile(path + '.' + name + '.keep')
    out[name] = int(n)
print(json.dumps(out))
`;

interface ScipyResult {
  face: { n: number; labels: Int32Array; keep: Uint8Array };
  full: { n: number };
}

function scipyLabel(mask: Uint8Array, size: [number, number, number], dir: string): ScipyResult {
  const path = join(dir, 'mask.u8');
  writeFileSync(path, mask);
  const counts = JSON.parse(execFileSync('/usr/bin/python3', ['-c', SCIPY, path, String(size[2]), String(size[1]), String(size[0])], { encoding: 'utf8' })) as {
    face: number;
    full: number;
  };
  const i32 = (b: Buffer) => new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  return {
    face: { n: counts.face, labels: i32(readFileSync(`${path}.face`)), keep: new Uint8Array(readFileSync(`${path}.face.keep`)) },
    full: { n: counts.full },
  };
}

async function realMasks(): Promise<{ name: string; mask: Uint8Array; size: [number, number, number] }[]> {
  const out: { name: string; mask: Uint8Array; size: [number, number, number] }[] = [];
  for (const id of ['hippocampus_001', 'hippocampus_003']) {
    const lab = await readVolume(dataPath('msd-hippocampus', 'labels', `${id}.nii.gz`));
    for (const cls of [1, 2]) out.push({ name: `${id} label ${cls}`, mask: Uint8Array.from(lab.data, (v) => (v === cls ? 1 : 0)), size: lab.size });
    const img = await readVolume(dataPath('msd-hippocampus', 'images', `${id}.nii.gz`));
    const sorted = Float64Array.from(img.data).sort();
    const t = sorted[Math.floor(sorted.length * 0.7)]!;
    out.push({ name: `${id} MRI > 70th percentile`, mask: Uint8Array.from(img.data, (v) => (v > t ? 1 : 0)), size: img.size });
  }
  const vessels = await readVolume(dataPath('drive', 'testing', '1st_manual', '01_manual1.gif'));
  out.push({
    name: 'DRIVE 01 vessels',
    mask: Uint8Array.from(vessels.data.subarray(0, vessels.size[0] * vessels.size[1]), (v) => (v ? 1 : 0)),
    size: [vessels.size[0], vessels.size[1], 1],
  });
  return out;
}

test('connected components and keep-largest match scipy.ndimage.label (face connectivity) on real masks', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-cc-'));
  try {
    let connectivityMatters = 0;
    for (const { name, mask, size } of await realMasks()) {
      const ref = scipyLabel(mask, size, dir);
      const ours = connectedComponents(mask, size);
      assert.equal(ours.sizes.length - 1, ref.face.n, `${name}: component count`);
      // Both number components in the order of their first voxel in x-fastest (C-order z, y, x) scan order.
      assert.deepEqual(ours.labels, ref.face.labels, `${name}: component labels`);
      const labelMap = Uint8Array.from(mask, (v) => v * 3);
      keepLargestComponent(labelMap, size, 3);
      assert.deepEqual(
        Uint8Array.from(labelMap, (v) => (v ? 1 : 0)),
        ref.face.keep,
        `${name}: keep-largest`,
      );
      if (ref.full.n !== ref.face.n) connectivityMatters++;
    }
    assert.ok(connectivityMatters >= 2, `26/8-connectivity should merge components on several of these masks (did on ${connectivityMatters})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two voxels touching only at an edge or a corner are two components (face connectivity)', () => {
  const size: [number, number, number] = [2, 2, 2];
  const edge = new Uint8Array(8);
  edge[0] = 1; // (0,0,0)
  edge[3] = 1; // (1,1,0): shares an edge
  assert.equal(connectedComponents(edge, size).sizes.length - 1, 2);
  const corner = new Uint8Array(8);
  corner[0] = 1;
  corner[7] = 1; // (1,1,1): shares a corner
  assert.equal(connectedComponents(corner, size).sizes.length - 1, 2);
  const face = new Uint8Array(8);
  face[0] = 1;
  face[4] = 1; // (0,0,1): shares a face
  assert.equal(connectedComponents(face, size).sizes.length - 1, 1);
});
