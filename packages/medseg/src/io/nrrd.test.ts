import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { dataPath } from '../testing/data.ts';
import { MedsegIoError, type IoErrorCode } from './errors.ts';
import { composeAffine } from './geometry.ts';
import { encodeNrrd, parseNrrd, readNrrd, writeNrrd } from './nrrd.ts';
import { voxelTypeOf, type Mat3, type Volume, type VoxelArray } from './volume.ts';
import { runPythonJson } from '../testing/python.ts';

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'medseg-nrrd-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Ref {
  dtype: string;
  shape: number[];
  md5: string;
  affine: number[];
}
const reference = (paths: string[]): Ref[] => runPythonJson<Ref[]>([join(here, 'nrrd_ref.py'), 'dump'], paths);
const md5 = (a: VoxelArray) =>
  createHash('md5')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

function assertMatches(v: Volume, ref: Ref, what: string): void {
  assert.equal(voxelTypeOf(v.data), ref.dtype, `${what}: dtype`);
  assert.deepEqual(
    v.size,
    [0, 1, 2].map((k) => ref.shape[k] ?? 1),
    `${what}: size`,
  );
  assert.equal(
    v.channels,
    ref.shape.slice(3).reduce((a, b) => a * b, 1),
    `${what}: channels`,
  );
  assert.equal(md5(v.data), ref.md5, `${what}: voxels`);
  composeAffine(v).forEach((x, k) => assert.ok(Math.abs(x - ref.affine[k]!) < 1e-9, `${what}: LPS affine[${k}] ${x} vs ${ref.affine[k]}`));
}

const realFiles = () =>
  ['pyradiomics-nrrd', 'dcmqi-ct-dicomseg'].flatMap((d) =>
    readdirSync(dataPath(d))
      .filter((f) => f.endsWith('.nrrd'))
      .sort()
      .map((f) => dataPath(d, f)),
  );

test('pyradiomics and dcmqi (3D Slicer) NRRD files match an independent numpy reader', async () => {
  const files = realFiles();
  assert.equal(files.length, 19);
  const refs = reference(files);
  for (let i = 0; i < files.length; i++) {
    const v = await readNrrd(files[i]!);
    assertMatches(v, refs[i]!, files[i]!);
  }
  // known facts from PROVENANCE.txt: label values and shapes
  const phantom = await readNrrd(dataPath('pyradiomics-nrrd', 'prostate_phantom_subvolume-label.nrrd'));
  assert.deepEqual(phantom.size, [82, 67, 13]);
  assert.deepEqual(
    [...new Set(phantom.data)].sort((a, b) => a - b),
    [0, 1, 7, 8, 9],
  );
});

function header(lines: string[]): string {
  return ['NRRD0004', ...lines].join('\n') + '\n';
}

test('detached, big-endian, ascii, RAS, channel-first and channel-last variants match the reference', async () => {
  // small random image with 3 channels; bytes laid out with the channel axis first (interleaved)
  const [nc, nx, ny, nz] = [3, 5, 4, 3];
  const vals = Array.from({ length: nc * nx * ny * nz }, (_, i) => ((i * 7919) % 601) - 300);
  const i16 = (le: boolean) => {
    const b = Buffer.alloc(vals.length * 2);
    vals.forEach((v, i) => (le ? b.writeInt16LE(v, 2 * i) : b.writeInt16BE(v, 2 * i)));
    return b;
  };
  const geo = ['space directions: none (0.5,0.1,0) (-0.1,0.5,0) (0,0,2.5)', 'space origin: (10,-20.5,3)'];
  const files: Array<[string, string | Buffer]> = [];
  files.push([
    'vec_first_be.nrrd',
    Buffer.concat([
      Buffer.from(
        header([
          'type: short',
          'dimension: 4',
          'space: right-anterior-superior',
          `sizes: ${nc} ${nx} ${ny} ${nz}`,
          ...geo,
          'kinds: vector domain domain domain',
          'endian: big',
          'encoding: raw',
        ]) + '\n',
      ),
      i16(false),
    ]),
  ]);
  files.push([
    'detached.nhdr',
    header([
      'type: int16',
      'dimension: 4',
      'space: left-posterior-superior',
      `sizes: ${nc} ${nx} ${ny} ${nz}`,
      ...geo,
      'endian: little',
      'encoding: gzip',
      'data file: detached.raw.gz',
    ]),
  ]);
  files.push(['detached.raw.gz', gzipSync(i16(true))]);
  files.push([
    'ascii.nrrd',
    header(['type: short', 'dimension: 4', 'space: left-anterior-superior', `sizes: ${nc} ${nx} ${ny} ${nz}`, ...geo, 'encoding: ascii']) +
      '\n' +
      vals.join(' ') +
      '\n',
  ]);
  // channel axis last (already planar), with a key:=value pair and a comment
  files.push([
    'vec_last.nrrd',
    Buffer.concat([
      Buffer.from(
        header([
          '# comment',
          'type: short',
          'dimension: 4',
          'space: left-posterior-superior',
          `sizes: ${nx} ${ny} ${nz} ${nc}`,
          'space directions: (0.5,0.1,0) (-0.1,0.5,0) (0,0,2.5) none',
          'space origin: (10,-20.5,3)',
          'Segment0_Name:=liver',
          'endian: little',
          'encoding: raw',
        ]) + '\n',
      ),
      i16(true),
    ]),
  ]);
  for (const [n, b] of files) writeFileSync(join(tmp, n), b);
  const readable = files.map(([n]) => join(tmp, n)).filter((p) => !p.endsWith('.gz'));
  const refs = reference(readable);
  for (let i = 0; i < readable.length; i++) {
    const v = await readNrrd(readable[i]!);
    assertMatches(v, refs[i]!, readable[i]!);
    assert.equal(v.channels, 3);
  }
  assert.equal(((await readNrrd(join(tmp, 'vec_last.nrrd'))).meta.extra!.keys as Record<string, string>).Segment0_Name, 'liver');
});

const ROT: Mat3 = [0.8, -0.6, 0, 0.6, 0.8, 0, 0, 0, 1];
test('write then read (raw and gzip) is identical; the reference reads what we write', async () => {
  const vols: Volume[] = [
    {
      data: Int16Array.from({ length: 60 }, (_, i) => i * 37 - 900),
      size: [5, 4, 3],
      channels: 1,
      spacing: [0.7, 0.7, 2.5],
      origin: [46.4649, 5.01881, -177.75],
      direction: ROT,
      meta: {},
    },
    {
      data: Float32Array.from({ length: 48 }, (_, i) => Math.cos(i) / 3),
      size: [4, 3, 2],
      channels: 2,
      spacing: [1 / 3, 1, 2],
      origin: [0.1, 0.2, 0.3],
      direction: [-1, 0, 0, 0, 0, 1, 0, 1, 0],
      meta: {},
    },
    {
      data: Uint8Array.from({ length: 24 }, (_, i) => i),
      size: [4, 6, 1],
      channels: 1,
      spacing: [1, 1, 1],
      origin: [0, 0, 0],
      direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
      meta: {},
    },
    {
      data: Float64Array.from({ length: 8 }, (_, i) => i / 7),
      size: [2, 2, 2],
      channels: 1,
      spacing: [3, 2, 1],
      origin: [1e-7, -1e6, 5],
      direction: ROT,
      meta: {},
    },
  ];
  const paths: string[] = [];
  for (const [i, v] of vols.entries()) {
    for (const encoding of ['raw', 'gzip'] as const) {
      const p = join(tmp, `rt${i}_${encoding}.nrrd`);
      await writeNrrd(p, v, { encoding });
      const back = await readNrrd(p);
      assert.equal(voxelTypeOf(back.data), voxelTypeOf(v.data));
      assert.deepEqual(Array.from(back.data), Array.from(v.data));
      assert.deepEqual([back.size, back.channels], [v.size, v.channels]);
      assert.deepEqual(composeAffine(back), composeAffine(v));
      paths.push(p);
    }
  }
  const refs = reference(paths);
  paths.forEach((p, k) => assertMatches(vols[Math.floor(k / 2)]!, refs[k]!, p));
});

function expectCode(fn: () => unknown, code: IoErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MedsegIoError, `expected MedsegIoError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test('bad NRRD input gives the right MedsegIoError code', async () => {
  const good = readFileSync(dataPath('pyradiomics-nrrd', 'breast1_label.nrrd'));
  const text = good.toString('latin1');
  const hdrEnd = text.indexOf('\n\n') + 2;
  const withHeader = (edit: (h: string) => string, body: Buffer = good.subarray(hdrEnd)) =>
    Buffer.concat([Buffer.from(edit(text.slice(0, hdrEnd)), 'latin1'), body]);
  const parse = (b: Uint8Array, limits?: { maxBytes?: number }) => () => parseNrrd(b, { path: 'x.nrrd', limits });
  assert.equal(parseNrrd(good).size[1], 120);
  expectCode(parse(Buffer.from('NRRX0004\n')), 'BAD_MAGIC');
  expectCode(parse(Buffer.from('P5\n')), 'BAD_MAGIC');
  expectCode(parse(good.subarray(0, good.length - 30)), 'TRUNCATED'); // cut gzip stream
  expectCode(parse(good.subarray(0, hdrEnd - 2)), 'TRUNCATED'); // header only
  const raw = encodeNrrd(parseNrrd(good), { encoding: 'raw' });
  expectCode(parse(raw.subarray(0, raw.length - 1)), 'TRUNCATED');
  expectCode(parse(withHeader((h) => h.replace('sizes: 45 120 21', 'sizes: 100000 100000 100000'))), 'TOO_LARGE');
  expectCode(parse(withHeader((h) => h.replace('sizes: 45 120 21', 'sizes: 45 -120 21'))), 'BAD_DATA');
  expectCode(parse(withHeader((h) => h.replace('(0,0,2.1000000000000001)', '(0,0,0)'))), 'BAD_GEOMETRY');
  expectCode(parse(withHeader((h) => h.replace('(0,0,2.1000000000000001)', '(0,0,nan)'))), 'BAD_GEOMETRY');
  expectCode(parse(withHeader((h) => h.replace('(0,0,2.1000000000000001)', '(0,0.66406200000000004,0)'))), 'BAD_GEOMETRY'); // parallel axes
  expectCode(parse(withHeader((h) => h.replace('type: short', 'type: complex'))), 'UNSUPPORTED');
  expectCode(parse(withHeader((h) => h.replace('encoding: gzip', 'encoding: bzip2'))), 'UNSUPPORTED');
  expectCode(parse(withHeader((h) => h.replace('type: short\n', ''))), 'BAD_DATA');
  // gzip bomb: header says 45x120x21 shorts, stream inflates to 100 MiB
  const bomb = withHeader((h) => h, gzipSync(Buffer.alloc(100 << 20), { level: 9 }));
  expectCode(parse(bomb), 'TOO_LARGE');
  // writer refuses bad spacing
  const v = parseNrrd(good);
  expectCode(() => encodeNrrd({ ...v, spacing: [1, 0, 1] }), 'BAD_GEOMETRY');
  expectCode(() => encodeNrrd({ ...v, spacing: [1, -2, 1] }), 'BAD_GEOMETRY');
  // missing file / missing detached data file
  await assert.rejects(readNrrd(join(tmp, 'none.nrrd')), (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND');
  writeFileSync(join(tmp, 'lost.nhdr'), header(['type: short', 'dimension: 3', 'sizes: 2 2 2', 'encoding: raw', 'data file: lost.raw']));
  await assert.rejects(readNrrd(join(tmp, 'lost.nhdr')), (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND');
});
