import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { dataPath } from '../testing/data.ts';
import { MedsegIoError, type IoErrorCode } from './errors.ts';
import { composeAffine, flipLpsRas } from './geometry.ts';
import { encodeNifti, parseNifti, readNifti, writeNifti } from './nifti.ts';
import { voxelTypeOf, type Mat3, type Vec3, type Volume, type VoxelArray } from './volume.ts';
import { runPython, runPythonJson } from '../testing/python.ts';

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'medseg-nifti-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Ref {
  dtype: string;
  shape: number[];
  md5: string;
  affine: number[];
}
function nibabel(paths: string[]): Ref[] {
  return runPythonJson<Ref[]>([join(here, 'nibabel_ref.py'), 'dump'], paths);
}

const md5 = (a: VoxelArray) =>
  createHash('md5')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

function assertMatches(v: Volume, ref: Ref, what: string, tol = 1e-5): void {
  assert.equal(voxelTypeOf(v.data), ref.dtype, `${what}: dtype`);
  const shape3 = [0, 1, 2].map((k) => ref.shape[k] ?? 1);
  assert.deepEqual(v.size, shape3, `${what}: size`);
  assert.equal(
    v.channels,
    ref.shape.slice(3).reduce((a, b) => a * b, 1),
    `${what}: channels`,
  );
  assert.equal(v.data.length, v.size[0] * v.size[1] * v.size[2] * v.channels);
  assert.equal(md5(v.data), ref.md5, `${what}: voxel bytes differ from nibabel`);
  const ras = flipLpsRas(composeAffine(v));
  ras.forEach((x, k) => assert.ok(Math.abs(x - ref.affine[k]!) <= tol, `${what}: affine[${k}] ${x} vs nibabel ${ref.affine[k]}`));
}

test('all MSD hippocampus images and labels match nibabel (voxels md5, dtype, RAS affine)', async () => {
  const files: string[] = [];
  for (const sub of ['images', 'labels']) {
    const dir = dataPath('msd-hippocampus', sub);
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.nii.gz')) files.push(join(dir, f));
  }
  assert.equal(files.length, 348);
  const refs = nibabel(files);
  for (let i = 0; i < files.length; i++) assertMatches(await readNifti(files[i]!), refs[i]!, files[i]!);
});

test('synthetic NIfTI-1/2, endianness, dtypes, 2D/4D/5D, rgb24, scaling, xform precedence match nibabel', async () => {
  const dir = join(tmp, 'made');
  execFileSync('mkdir', ['-p', dir]);
  const files = runPythonJson<string[]>([join(here, 'nibabel_ref.py'), 'make', dir]);
  assert.ok(files.length >= 30);
  const refs = nibabel(files);
  for (let i = 0; i < files.length; i++) {
    const v = await readNifti(files[i]!);
    assertMatches(v, refs[i]!, files[i]!);
  }
});

function makeVolume(
  type: 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64',
  size: Vec3,
  channels: number,
  direction: Mat3,
): Volume {
  const n = size[0] * size[1] * size[2] * channels;
  const ctor = {
    uint8: Uint8Array,
    int8: Int8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    int32: Int32Array,
    uint32: Uint32Array,
    float32: Float32Array,
    float64: Float64Array,
  }[type];
  const data = new ctor(n);
  for (let i = 0; i < n; i++) data[i] = type.startsWith('float') ? Math.sin(i) * 1000 : ((i * 7919) % 200) - (type.startsWith('u') ? 0 : 100);
  return { data, size, channels, spacing: [0.8, 1.25, 3], origin: [-12.5, 40.25, 7], direction, meta: {} };
}

// oblique rotation (unit quaternion), with a left-handed variant (qfac = -1)
const OBLIQUE: Mat3 = (() => {
  const [a, b, c, d] = [0.9, 0.2, -0.3, 0.25].map((x, _, q) => x / Math.hypot(...q)) as [number, number, number, number];
  return [
    a * a + b * b - c * c - d * d,
    2 * (b * c - a * d),
    2 * (b * d + a * c),
    2 * (b * c + a * d),
    a * a + c * c - b * b - d * d,
    2 * (c * d - a * b),
    2 * (b * d - a * c),
    2 * (c * d + a * b),
    a * a + d * d - b * b - c * c,
  ] as Mat3;
})();
const LEFT: Mat3 = OBLIQUE.map((x, k) => (k % 3 === 2 ? -x : x)) as Mat3;

test('write then read is identical (several dtypes, 2D/3D/4D, oblique, .nii/.nii.gz, v1/v2) and nibabel agrees', async () => {
  const cases: Array<[string, Volume]> = [
    ['u8_3d', makeVolume('uint8', [5, 4, 3], 1, OBLIQUE)],
    ['i8_2d', makeVolume('int8', [6, 5, 1], 1, [1, 0, 0, 0, 1, 0, 0, 0, 1])],
    ['i16_4d', makeVolume('int16', [4, 3, 2], 3, LEFT)],
    ['u16_3d', makeVolume('uint16', [3, 3, 3], 1, LEFT)],
    ['i32_3d', makeVolume('int32', [2, 3, 4], 1, OBLIQUE)],
    ['u32_3d', makeVolume('uint32', [2, 3, 4], 1, OBLIQUE)],
    ['f32_4d', makeVolume('float32', [4, 3, 2], 2, OBLIQUE)],
    ['f64_3d', makeVolume('float64', [4, 3, 2], 1, [-1, 0, 0, 0, -1, 0, 0, 0, 1])],
  ];
  const paths: string[] = [];
  const expect: Volume[] = [];
  for (const [name, v] of cases) {
    for (const [ext, version] of [
      ['.nii', 1],
      ['.nii.gz', 1],
      ['.nii.gz', 2],
    ] as const) {
      const p = join(tmp, `${name}_v${version}${ext}`);
      await writeNifti(p, v, { version });
      const back = await readNifti(p);
      assert.equal(voxelTypeOf(back.data), voxelTypeOf(v.data), p);
      assert.deepEqual(Array.from(back.data), Array.from(v.data), p);
      assert.deepEqual(back.size, v.size);
      assert.equal(back.channels, v.channels);
      const tol = version === 1 ? 2e-6 : 1e-12; // NIfTI-1 stores geometry as float32
      for (const key of ['spacing', 'origin', 'direction'] as const) {
        (back[key] as number[]).forEach((x, k) => assert.ok(Math.abs(x - v[key][k]!) <= tol * Math.max(1, Math.abs(v[key][k]!)), `${p} ${key}`));
      }
      paths.push(p);
      expect.push(v);
    }
  }
  const refs = nibabel(paths);
  paths.forEach((p, i) => assertMatches(expect[i]!, refs[i]!, `nibabel reading ${p}`, 1e-4));
  // nibabel's qform (rebuilt from our quaternion + qfac) must agree with the sform we wrote
  const q = JSON.parse(
    runPython(
      [
        '-c',
        'import sys,json,nibabel as nib;print(json.dumps([[nib.load(p).get_qform().ravel().tolist(),nib.load(p).get_sform().ravel().tolist(),int(nib.load(p).header["qform_code"])] for p in json.load(sys.stdin)]))',
      ],
      { input: JSON.stringify(paths) },
    ),
  ) as Array<[number[], number[], number]>;
  for (const [qf, sf, code] of q) {
    assert.equal(code, 1);
    qf.forEach((x, k) => assert.ok(Math.abs(x - sf[k]!) < 1e-4, `qform vs sform ${qf} ${sf}`));
  }
});

function expectCode(fn: () => unknown, code: IoErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MedsegIoError, `expected MedsegIoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test('bad NIfTI input gives the right MedsegIoError code', async () => {
  const good = encodeNifti(makeVolume('int16', [8, 8, 8], 1, OBLIQUE));
  const parse = (b: Uint8Array, limits?: { maxBytes?: number; maxDecompressedBytes?: number }) => () => parseNifti(b, { path: 'x.nii', limits });
  // truncated: inside the header, inside the data, and a cut gzip stream
  expectCode(parse(good.subarray(0, 200)), 'TRUNCATED');
  expectCode(parse(good.subarray(0, good.length - 1)), 'TRUNCATED');
  const gz = gzipSync(good);
  expectCode(parse(gz.subarray(0, gz.length - 40)), 'TRUNCATED');
  // wrong magic and wrong sizeof_hdr
  const badMagic = Buffer.from(good);
  badMagic.write('abc', 344, 'latin1');
  expectCode(parse(badMagic), 'BAD_MAGIC');
  const badSize = Buffer.from(good);
  badSize.writeInt32LE(349, 0);
  expectCode(parse(badSize), 'BAD_MAGIC');
  // absurd dims, both versions: must throw before allocating (the file itself is tiny)
  const huge1 = Buffer.from(good);
  for (const k of [1, 2, 3]) huge1.writeInt16LE(32767, 40 + 2 * k);
  expectCode(parse(huge1), 'TOO_LARGE');
  const v2 = encodeNifti(makeVolume('float32', [4, 4, 4], 1, OBLIQUE), { version: 2 });
  const huge2 = Buffer.from(v2);
  for (const k of [1, 2, 3]) huge2.writeBigInt64LE(100000n, 16 + 8 * k);
  expectCode(parse(huge2), 'TOO_LARGE');
  const before = process.memoryUsage().rss;
  expectCode(parse(huge2, { maxBytes: 1 << 40 }), 'TOO_LARGE'); // 4e15 bytes is over any limit a Buffer allows
  assert.ok(process.memoryUsage().rss - before < 256 << 20);
  // negative / zero dims
  const neg = Buffer.from(good);
  neg.writeInt16LE(-5, 42);
  expectCode(parse(neg), 'BAD_DATA');
  // zero, NaN spacing through the sform (pixdim zero is fixed to 1 as nibabel does)
  const zeroCol = Buffer.from(good);
  for (const r of [0, 1, 2]) zeroCol.writeFloatLE(0, 280 + 16 * r + 4);
  expectCode(parse(zeroCol), 'BAD_GEOMETRY');
  const nan = Buffer.from(good);
  nan.writeFloatLE(NaN, 280);
  expectCode(parse(nan), 'BAD_GEOMETRY');
  // writer refuses negative / zero / NaN spacing
  for (const s of [-1, 0, NaN]) {
    const v = makeVolume('uint8', [2, 2, 2], 1, OBLIQUE);
    v.spacing = [1, s, 1];
    expectCode(() => encodeNifti(v), 'BAD_GEOMETRY');
  }
  // unknown datatype
  const dt = Buffer.from(good);
  dt.writeInt16LE(1536, 70); // float128
  expectCode(parse(dt), 'UNSUPPORTED');
  dt.writeInt16LE(999, 70);
  expectCode(parse(dt), 'UNSUPPORTED');
  // vox_offset below the header
  const off = Buffer.from(good);
  off.writeFloatLE(100, 108);
  expectCode(parse(off), 'BAD_DATA');
  // gzip bomb: a valid 8x8x8 header followed by 200 MiB of zeros, ~200 KiB compressed
  const bomb = gzipSync(Buffer.concat([good, Buffer.alloc(200 << 20)]), { level: 9 });
  assert.ok(bomb.length < 400_000);
  expectCode(parse(bomb), 'TOO_LARGE');
  // and a header declaring more than the decompression limit
  const big = gzipSync(Buffer.concat([huge1.subarray(0, 352), Buffer.alloc(1 << 20)]));
  expectCode(parse(big, { maxBytes: 1 << 40, maxDecompressedBytes: 16 << 20 }), 'TOO_LARGE');
  // not found
  await assert.rejects(readNifti(join(tmp, 'nope.nii')), (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND');
  // big-endian header with corrupted magic still BAD_MAGIC; empty file TRUNCATED
  expectCode(parse(new Uint8Array(0)), 'TRUNCATED');
  writeFileSync(join(tmp, 'empty.nii'), '');
  await assert.rejects(readNifti(join(tmp, 'empty.nii')), (e: unknown) => e instanceof MedsegIoError && e.code === 'TRUNCATED');
  void readFileSync;
});
