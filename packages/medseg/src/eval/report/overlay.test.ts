import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { extractSlice, largestReferenceSlice, PREDICTION_COLOR, REFERENCE_COLOR, renderOverlayPng, renderVolumeOverlayPng, type Axis } from './overlay.ts';
import { MedsegStatsError } from '../statistics/errors.ts';
import { seededRandom } from '../../util/random.ts';
import { runPythonJson } from '../../testing/python.ts';

const REF = fileURLToPath(new URL('./overlay_ref.py', import.meta.url));

function pyRef(req: unknown): any {
  return runPythonJson([REF], req);
}

/** A phantom slice: bright disc "organ" on noisy background, reference disc, shifted/irregular prediction. */
function phantom(w: number, h: number) {
  const rand = seededRandom(11);
  const image = new Float32Array(w * h);
  const reference = new Uint8Array(w * h);
  const prediction = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = x + w * y;
      const r = Math.hypot(x - w / 2, y - h / 2);
      image[i] = (r < w / 3 ? 120 : 20) + 15 * rand();
      if (r < w / 4) reference[i] = 1;
      if (Math.hypot(x - w / 2 - 3, y - h / 2 + 2) < w / 4.5 + (x % 5 === 0 ? 1 : 0)) prediction[i] = 1;
      if (x === 0 && y > 5 && y < 12) prediction[i] = 1; // touches the border
    }
  }
  return { image, reference, prediction };
}

test('overlay PNG: grey window plus both outlines, pixel-exact against PIL + scipy.ndimage', () => {
  const w = 48;
  const h = 40;
  const { image, reference, prediction } = phantom(w, h);
  const window: [number, number] = [10, 140];
  const png = renderOverlayPng({ image, reference, prediction, width: w, height: h, window, scale: 3 });
  assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  const ref = pyRef({
    png: {
      hex: png.toString('hex'),
      width: w,
      height: h,
      scale: 3,
      window,
      image: [...image],
      reference: [...reference],
      prediction: [...prediction],
      refColor: REFERENCE_COLOR,
      predColor: PREDICTION_COLOR,
    },
  });
  assert.deepEqual(ref.png.shape, [h * 3, w * 3, 3]);
  assert.ok(ref.png.refEdge > 50 && ref.png.predEdge > 50);
  assert.equal(ref.png.mismatches, 0);
});

test('overlay default scale and label selection; bad input is a typed error', () => {
  const w = 32;
  const h = 32;
  const { image, reference, prediction } = phantom(w, h);
  const png = renderOverlayPng({ image, reference, prediction, width: w, height: h });
  assert.equal(png.readUInt32BE(16), 256); // IHDR width: 32 * 8
  assert.throws(() => renderOverlayPng({ image, reference, prediction: prediction.subarray(1), width: w, height: h }), MedsegStatsError);
  assert.throws(() => renderOverlayPng({ image, reference, prediction, width: 0, height: h }), MedsegStatsError);
  assert.throws(() => renderOverlayPng({ image, reference, prediction, width: w, height: h, scale: 1000 }), /too large/);
});

test('overlay downsampling equals drawing the block-mean image and block-any masks; a 1-pixel line keeps its outline', () => {
  const w = 61;
  const h = 40;
  const { image, prediction } = phantom(w, h);
  const reference = new Uint8Array(w * h);
  for (let y = 4; y < 36; y++) reference[10 + w * y] = 2; // a vessel one pixel wide, label 2
  const window: [number, number] = [10, 140];
  const png = renderOverlayPng({ image, reference, prediction, width: w, height: h, window, scale: 1, downsample: 2, label: 2 });
  const W = 31;
  const H = 20;
  const img = new Float32Array(W * H);
  const cnt = new Uint8Array(W * H);
  const ref = new Uint8Array(W * H);
  const pred = new Uint8Array(W * H);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (x >> 1) + W * (y >> 1);
      img[o]! += image[x + w * y]!;
      cnt[o]!++;
      if (reference[x + w * y] === 2) ref[o] = 1;
      if (prediction[x + w * y] === 2) pred[o] = 1;
    }
  }
  for (let o = 0; o < W * H; o++) img[o]! /= cnt[o]!;
  const byHand = renderOverlayPng({ image: img, reference: ref, prediction: pred, width: W, height: H, window, scale: 1 });
  assert.ok(png.equals(byHand));
  const decoded = PNG.sync.read(png);
  assert.deepEqual([decoded.width, decoded.height], [W, H]);
  let outline = 0;
  for (let i = 0; i < W * H; i++) if (decoded.data[4 * i] === REFERENCE_COLOR[0] && decoded.data[4 * i + 1] === REFERENCE_COLOR[1]) outline++;
  assert.ok(outline >= 16, `the line's outline has ${outline} px`);
});

test('overlay grey levels: 256 is the default, 2 leaves only black and white; bad values are typed errors', () => {
  const w = 32;
  const h = 32;
  const { image, reference, prediction } = phantom(w, h);
  const base = { image, reference, prediction, width: w, height: h, scale: 1 };
  assert.ok(renderOverlayPng(base).equals(renderOverlayPng({ ...base, greyLevels: 256 })));
  const two = PNG.sync.read(renderOverlayPng({ ...base, greyLevels: 2 }));
  const greys = new Set<number>();
  for (let i = 0; i < w * h; i++) if (two.data[4 * i] === two.data[4 * i + 1] && two.data[4 * i + 1] === two.data[4 * i + 2]) greys.add(two.data[4 * i]!);
  assert.deepEqual(
    [...greys].sort((a, b) => a - b),
    [0, 255],
  );
  for (const bad of [{ downsample: 0 }, { downsample: 1.5 }, { greyLevels: 1 }, { greyLevels: 300 }])
    assert.throws(() => renderOverlayPng({ ...base, ...bad }), MedsegStatsError);
});

test('largest reference slice and slice extraction match numpy on every axis', () => {
  const size: [number, number, number] = [9, 7, 6];
  const [nx, ny, nz] = size;
  const rand = seededRandom(5);
  const labels = new Uint8Array(nx * ny * nz);
  const data = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        data[i] = rand() * 100;
        // anisotropic blob so the argmax differs per axis
        if ((x - 6) ** 2 / 6 + (y - 2) ** 2 / 3 + (z - 3) ** 2 / 2 < 1.5) labels[i] = 2;
      }
    }
  }
  const ref = pyRef({ volume: { size, labels: [...labels], data: [...data], index: 2 } });
  for (const axis of [0, 1, 2] as Axis[]) {
    assert.equal(largestReferenceSlice(labels, size, axis), ref.largest[String(axis)], `axis ${axis}`);
    assert.equal(largestReferenceSlice(labels, size, axis, 2), ref.largest[String(axis)]);
    const s = extractSlice(data, size, axis, 2);
    assert.deepEqual(
      [...s.data],
      ref.slices[String(axis)].map((v: number) => Math.fround(v)),
    );
  }
  assert.equal(largestReferenceSlice(new Uint8Array(nx * ny * nz), size), 3, 'empty reference -> middle slice');
  assert.throws(() => extractSlice(data, size, 2, 6), MedsegStatsError);
  const v = renderVolumeOverlayPng(data, labels, labels, size);
  assert.equal(v.index, ref.largest['2']);
});
