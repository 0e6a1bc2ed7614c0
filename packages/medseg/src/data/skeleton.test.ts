import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataPath } from '../testing/data.ts';
import { runPython } from '../testing/python.ts';
import { skeletonize2d, tubedSkeletons } from './skeleton.ts';

/** The pixels of `a` that are set, as a count, and how many of them are also set in `b`. */
function overlap(a: Uint8Array, b: Uint8Array): { a: number; both: number } {
  let n = 0;
  let both = 0;
  for (let i = 0; i < a.length; i++) {
    if (!a[i]) continue;
    n++;
    if (b[i]) both++;
  }
  return { a: n, both };
}

/** 8-connected components of a binary h x w image. */
function components(m: Uint8Array, h: number, w: number): number {
  const seen = new Uint8Array(m.length);
  let count = 0;
  for (let s = 0; s < m.length; s++) {
    if (!m[s] || seen[s]) continue;
    count++;
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      const y = (i / w) | 0;
      const x = i % w;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const j = yy * w + xx;
          if (m[j] && !seen[j]) {
            seen[j] = 1;
            stack.push(j);
          }
        }
    }
  }
  return count;
}

test("a DRIVE vessel map's skeleton: inside the vessels, thin, as connected, and its tube that of scikit-image's skeleton", (ctx) => {
  const file = dataPath('drive', 'training', '1st_manual', '21_manual1.gif');
  const r = JSON.parse(
    runPython(
      [
        '-c',
        `
import json, sys
import numpy as np
from PIL import Image
from skimage.morphology import skeletonize, binary_dilation
m = np.array(Image.open(sys.argv[1])) != 0
s = skeletonize(m)
tube = binary_dilation(binary_dilation(s)) & m
print(json.dumps({'h': m.shape[0], 'w': m.shape[1], 'mask': np.flatnonzero(m).tolist(), 'skeleton': np.flatnonzero(s).tolist(), 'tube': np.flatnonzero(tube).tolist()}))
`,
        file,
      ],
      {},
    ),
  ) as { h: number; w: number; mask: number[]; skeleton: number[]; tube: number[] };
  const { h, w } = r;
  const of = (ids: number[]) => {
    const m = new Uint8Array(h * w);
    for (const i of ids) m[i] = 1;
    return m;
  };
  const mask = of(r.mask);
  const ours = skeletonize2d(mask, h, w);
  const inside = overlap(ours, mask);
  assert.equal(inside.both, inside.a, 'the skeleton lies in the mask');
  // Thin: 2x2 blocks survive only where branches meet.
  let blocks = 0;
  for (let y = 0; y + 1 < h; y++)
    for (let x = 0; x + 1 < w; x++) {
      const i = y * w + x;
      if (ours[i] && ours[i + 1] && ours[i + w] && ours[i + w + 1]) blocks++;
    }
  assert.ok(blocks < 0.005 * inside.a, `${blocks} 2x2 blocks in a skeleton of ${inside.a} pixels`);
  assert.equal(components(ours, h, w), components(mask, h, w), 'thinning keeps every vessel tree connected and separate');
  // scikit-image's variant also strips the staircase pixels classic Zhang-Suen keeps on diagonals: nearly all of its pixels are ours.
  const theirs = overlap(of(r.skeleton), ours);
  assert.ok(theirs.both / theirs.a > 0.99, `${theirs.both} of scikit-image's ${theirs.a} skeleton pixels are ours`);
  // What the loss sees, the tube, agrees closely.
  const tube = tubedSkeletons(mask, [1, h, w], 2).subarray(h * w);
  const ref = of(r.tube);
  const t = overlap(ref, tube);
  const ourCount = tube.reduce((a, v) => a + v, 0);
  const dice = (2 * t.both) / (t.a + ourCount);
  ctx.diagnostic(`${blocks} 2x2 blocks; ${theirs.both} of ${theirs.a} scikit-image skeleton pixels ours (ours ${inside.a}); tube Dice ${dice.toFixed(4)}`);
  assert.ok(dice > 0.95, `tube Dice vs scikit-image ${dice.toFixed(4)}`);
});

test('tubed skeletons of a batch: a 3-pixel bar becomes its centre line, widened back inside the bar; per class and case, background empty', () => {
  const [h, w] = [7, 12];
  const labels = new Uint8Array(2 * h * w);
  // Case 0: class 1 is rows 2-4, columns 1-10; case 1: class 2 is one pixel, class 1 absent.
  for (let y = 2; y <= 4; y++) for (let x = 1; x <= 10; x++) labels[y * w + x] = 1;
  labels[h * w + 3 * w + 5] = 2;
  const bar = labels.subarray(0, h * w);
  const line = skeletonize2d(bar, h, w);
  for (let i = 0; i < h * w; i++) if (line[i]) assert.equal(Math.floor(i / w), 3, 'the centre row');
  let onLine = 0;
  for (let x = 0; x < w; x++) onLine += line[3 * w + x]!;
  assert.ok(onLine >= 6, `the centre line keeps ${onLine} of the bar's 10 columns`);
  const t = tubedSkeletons(labels, [2, h, w], 3);
  const at = (b: number, k: number, y: number, x: number) => t[((b * 3 + k) * h + y) * w + x]!;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      assert.equal(at(0, 0, y, x), 0);
      assert.equal(at(1, 0, y, x), 0);
      assert.equal(at(0, 2, y, x), 0, 'case 0 has no class 2');
      assert.equal(at(1, 1, y, x), 0, 'case 1 has no class 1');
      if (at(0, 1, y, x)) assert.equal(bar[y * w + x], 1, 'the tube stays in the bar');
      // Two cross dilations of the centre row cover the bar's three rows wherever the line ran.
      if (line[3 * w + x] && y >= 2 && y <= 4) assert.equal(at(0, 1, y, x), 1);
    }
  // A one-pixel object is its own skeleton.
  assert.equal(at(1, 2, 3, 5), 1);
});
