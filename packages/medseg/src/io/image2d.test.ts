import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { dataPath } from '../testing/data.ts';
import { MedsegIoError, type IoErrorCode } from './errors.ts';
import { decodeImage2d, readImage2d, writePng } from './image2d.ts';
import { encodePng } from './image2d-png.ts';
import { IDENTITY3, voxelTypeOf, type Volume, type VoxelArray } from './volume.ts';
import { runPythonJson } from '../testing/python.ts';

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'medseg-img-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Ref {
  shape: [number, number, number];
  dtype: string;
  md5: string;
  sum: number;
  planar: number[] | null;
}
const pil = (paths: string[]): Ref[] => runPythonJson<Ref[]>([join(here, 'pil_ref.py'), 'dump'], paths);
const md5 = (a: VoxelArray) =>
  createHash('md5')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

function checkStructure(v: Volume): void {
  assert.equal(v.size[2], 1);
  assert.equal(v.data.length, v.size[0] * v.size[1] * v.channels);
  assert.deepEqual(v.spacing, [1, 1, 1]);
  assert.deepEqual(v.direction, [...IDENTITY3]);
}

function assertMatches(v: Volume, ref: Ref, what: string): void {
  checkStructure(v);
  assert.deepEqual([v.size[0], v.size[1], v.channels], ref.shape, `${what}: shape`);
  assert.equal(voxelTypeOf(v.data), ref.dtype, `${what}: dtype`);
  assert.equal(md5(v.data), ref.md5, `${what}: pixels differ from PIL`);
}

test('DRIVE TIFF/GIF and ISBI PNG files match PIL', async () => {
  const files: string[] = [];
  for (const split of ['training', 'testing']) {
    for (const sub of ['images', '1st_manual', '2nd_manual', 'mask']) {
      let names: string[] = [];
      try {
        names = readdirSync(dataPath('drive', split, sub));
      } catch {
        continue;
      }
      files.push(...names.sort().map((f) => dataPath('drive', split, sub, f)));
    }
  }
  for (const sub of ['images', 'masks'])
    files.push(
      ...readdirSync(dataPath('isbi2012-em', sub))
        .sort()
        .map((f) => dataPath('isbi2012-em', sub, f)),
    );
  assert.ok(files.length >= 200, `found ${files.length}`);
  const refs = pil(files);
  for (let i = 0; i < files.length; i++) assertMatches(await readImage2d(files[i]!), refs[i]!, files[i]!);
  const tif = await readImage2d(dataPath('drive', 'training', 'images', '21_training.tif'));
  assert.deepEqual([tif.size, tif.channels], [[565, 584, 1], 3]);
});

test('PNG / JPEG / TIFF / BMP / GIF variants written by PIL decode as PIL does', async () => {
  const dir = join(tmp, 'made');
  mkdirSync(dir);
  const files = runPythonJson<string[]>([join(here, 'pil_ref.py'), 'make', dir]);
  const refs = pil(files);
  for (let i = 0; i < files.length; i++) {
    const v = await readImage2d(files[i]!);
    if (files[i]!.endsWith('.jpg')) {
      // two IDCT implementations: allow a small per-pixel difference
      checkStructure(v);
      assert.deepEqual([v.size[0], v.size[1], v.channels], refs[i]!.shape, files[i]);
      const ref = refs[i]!.planar!;
      let maxd = 0,
        sumd = 0;
      v.data.forEach((x, k) => {
        const d = Math.abs(x - ref[k]!);
        maxd = Math.max(maxd, d);
        sumd += d;
      });
      assert.ok(maxd <= 4 && sumd / ref.length < 0.6, `${files[i]}: max diff ${maxd}, mean ${sumd / ref.length}`);
    } else {
      assertMatches(v, refs[i]!, files[i]!);
    }
  }
});

test('PNG writer: masks (uint8/uint16) and RGB overlays read back identically, by us and by PIL', async () => {
  const [w, h] = [31, 17];
  const mk = (data: VoxelArray, channels: number): Volume => ({
    data,
    size: [w, h, 1],
    channels,
    spacing: [1, 1, 1],
    origin: [0, 0, 0],
    direction: [...IDENTITY3],
    meta: {},
  });
  const vols = [
    mk(
      Uint8Array.from({ length: w * h }, (_, i) => i % 3),
      1,
    ),
    mk(
      Uint16Array.from({ length: w * h }, (_, i) => (i * 2311) % 65536),
      1,
    ),
    mk(
      Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7) % 256),
      3,
    ),
    mk(
      Uint16Array.from({ length: w * h * 3 }, (_, i) => (i * 977) % 65536),
      3,
    ),
  ];
  const paths: string[] = [];
  for (const [i, v] of vols.entries()) {
    const p = join(tmp, `w${i}.png`);
    await writePng(p, v);
    const back = await readImage2d(p);
    assert.equal(voxelTypeOf(back.data), voxelTypeOf(v.data));
    assert.deepEqual(Array.from(back.data), Array.from(v.data));
    assert.equal(back.channels, v.channels);
    paths.push(p);
  }
  const refs = pil(paths.slice(0, 3)); // PIL reduces 16-bit RGB to 8 bits, so it is not a reference for w3
  refs.forEach((r, i) => assertMatches(vols[i]!, r, paths[i]!));
  assert.throws(
    () => encodePng({ ...vols[0]!, data: new Float32Array(w * h) }),
    (e: unknown) => e instanceof MedsegIoError && e.code === 'UNSUPPORTED',
  );
});

function expectCode(fn: () => unknown, code: IoErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MedsegIoError, `expected MedsegIoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test('bad 2D input gives the right MedsegIoError code', () => {
  const png = readFileSync(dataPath('isbi2012-em', 'masks', '0.png'));
  const d = (b: Uint8Array) => () => decodeImage2d(b, { path: 'x', limits: { maxBytes: 64 << 20 } });
  expectCode(d(png.subarray(0, png.length - 100)), 'TRUNCATED');
  const flipped = Buffer.from(png);
  flipped[png.length - 200] = flipped[png.length - 200]! ^ 0xff;
  expectCode(d(flipped), 'CORRUPT'); // CRC mismatch
  // IHDR claiming 100000 x 100000 with a correct CRC: too large before any allocation
  const huge = Buffer.from(png);
  huge.writeUInt32BE(100000, 16);
  huge.writeUInt32BE(100000, 20);
  huge.writeUInt32BE(crc32(huge.subarray(12, 29)), 29);
  expectCode(d(huge), 'TOO_LARGE');
  expectCode(d(Buffer.from('hello world')), 'BAD_MAGIC');
  const gif = readFileSync(dataPath('drive', 'training', 'mask', '21_training_mask.gif'));
  expectCode(d(gif.subarray(0, gif.length >> 1)), 'TRUNCATED');
  const bigGif = Buffer.from(gif);
  bigGif.writeUInt16LE(65535, 6);
  bigGif.writeUInt16LE(65535, 8);
  expectCode(d(bigGif), 'TOO_LARGE');
  const tif = readFileSync(dataPath('drive', 'training', 'images', '21_training.tif'));
  assert.throws(d(tif.subarray(0, 5000)), (e: unknown) => e instanceof MedsegIoError && ['TRUNCATED', 'CORRUPT'].includes(e.code));
  expectCode(d(Buffer.from([0x42, 0x4d, 1, 2])), 'TRUNCATED');
  expectCode(d(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3])), 'CORRUPT');
});
