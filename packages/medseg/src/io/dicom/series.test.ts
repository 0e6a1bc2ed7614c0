import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MedsegIoError } from '../errors.ts';
import { dataPath } from '../../testing/data.ts';
import type { Volume } from '../volume.ts';
import { runRef } from '../../testing/dicom-ref.ts';
import { runPython } from '../../testing/python.ts';
import { listDicomSeries, readDicomSeries } from './series.ts';
import type { SkippedFile } from './files.ts';
import { synthSlice } from '../../testing/dicom-synth.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const files = (dir: string) =>
  readdirSync(D(dir))
    .sort()
    .map((f) => D(dir, f));

interface Geo {
  size: number[];
  origin: number[];
  spacing: number[];
  direction: number[];
  sop?: string[];
}

function assertClose(a: readonly number[], b: readonly number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol, `${what}[${i}]: ${x} vs ${b[i]}`));
}

function assertMatches(v: Volume, ref: { info: Geo; data?: Float32Array }, what: string): void {
  assert.deepEqual(v.size, ref.info.size, `${what} size`);
  assertClose(v.origin, ref.info.origin, 1e-6, `${what} origin`);
  assertClose(v.spacing, ref.info.spacing, 1e-6, `${what} spacing`);
  assertClose(v.direction, ref.info.direction, 1e-9, `${what} direction`);
  const r = ref.data!;
  assert.equal(v.data.length, r.length, `${what} voxel count`);
  let bad = 0;
  for (let i = 0; i < r.length; i++) if (v.data[i] !== r[i]) bad++;
  assert.equal(bad, 0, `${what}: ${bad} voxels differ from pydicom`);
}

const tmp = mkdtempSync(join(tmpdir(), 'medseg-dcm-series-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('readDicomSeries vs pydicom', () => {
  const jobs = [
    { op: 'series' as const, files: files('ct-3slice') },
    { op: 'series' as const, files: files('23x38x3/image') },
    { op: 'series' as const, files: files('24x38x3/image') },
    { op: 'multiframe' as const, file: D('23x38x3/multiframe/mf.dcm') },
    { op: 'multiframe' as const, file: D('24x38x3/multiframe/mf.dcm') },
  ];
  const refs = runRef<Geo>(jobs);

  it('reads the 3-slice CT (implicit VR LE, rescale to HU) like pydicom', async () => {
    const v = await readDicomSeries(D('ct-3slice'));
    assert.ok(v.data instanceof Float32Array, 'rescaled CT is float32');
    assertMatches(v, refs[0]!, 'ct-3slice');
    assert.deepEqual(v.meta.sopInstanceUIDs, refs[0]!.info.sop);
    assert.equal(v.meta.modality, 'CT');
    assert.ok(v.meta.frameOfReferenceUID && v.meta.studyInstanceUID && v.meta.seriesInstanceUID);
  });

  it('reads the odd-sized image series, keeping the integer type when rescale is identity', async () => {
    for (const [i, dir] of [
      [1, '23x38x3/image'],
      [2, '24x38x3/image'],
    ] as const) {
      const v = await readDicomSeries(files(dir).reverse()); // order of the list must not matter
      assert.ok(v.data instanceof Uint16Array, `${dir} stays uint16`);
      assertMatches(v, refs[i]!, dir);
    }
  });

  it('reads enhanced multi-frame CT through its functional groups', async () => {
    for (const [i, f] of [
      [3, '23x38x3/multiframe/mf.dcm'],
      [4, '24x38x3/multiframe/mf.dcm'],
    ] as const) {
      const v = await readDicomSeries(D(f));
      assertMatches(v, refs[i]!, f);
    }
  });
});

describe('series selection', () => {
  it('lists the series of a folder and refuses to guess between image series', async () => {
    const list = await listDicomSeries(D('23x38x3'));
    assert.deepEqual(list.map((s) => s.modality).sort(), ['CT', 'CT', 'SEG']);
    assert.ok(list.every((s) => s.sliceCount === 3));
    assert.ok(list.some((s) => s.description === 'Image 23x38x3'));
    await assert.rejects(
      readDicomSeries(D('23x38x3')),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'INCONSISTENT_SERIES' && /2 image series/.test(e.message),
    );
    const ct = list.find((s) => s.description === 'Image 23x38x3')!;
    const v = await readDicomSeries(D('23x38x3'), { seriesInstanceUID: ct.seriesInstanceUID });
    assert.deepEqual(v.size, [23, 38, 3]);
  });
});

describe('transfer syntaxes (files converted by pydicom)', () => {
  // pydicom writes the same CT slice as big endian, deflated and RLE, and an 8-bit JPEG baseline image.
  const src = D('23x38x3/image/IMG0002.dcm');
  runPython([
    '-c',
    `
import sys, io, numpy as np, pydicom
from pydicom.uid import ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, RLELossless, JPEGBaseline8Bit
from pydicom.encaps import encapsulate
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
d = pydicom.dcmread(src)
arr = d.pixel_array
be = pydicom.dcmread(src)
be.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
be.is_little_endian = False; be.is_implicit_VR = False
be.PixelData = arr.astype('>u2').tobytes()
be.save_as(out + '/be.dcm', write_like_original=False)
df = pydicom.dcmread(src)
df.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
df.is_little_endian = True; df.is_implicit_VR = False
df.save_as(out + '/deflated.dcm', write_like_original=False)
rl = pydicom.dcmread(src)
rl.is_little_endian = True; rl.is_implicit_VR = False
rl.compress(RLELossless)
rl.save_as(out + '/rle.dcm', write_like_original=False)
jp = pydicom.dcmread(src)
img = ((arr.astype(np.float64) - arr.min()) * 255 / max(1, arr.max() - arr.min())).astype(np.uint8)
buf = io.BytesIO(); Image.fromarray(img).save(buf, format='JPEG', quality=90)
jp.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
jp.is_little_endian = True; jp.is_implicit_VR = False
jp.BitsAllocated = 8; jp.BitsStored = 8; jp.HighBit = 7; jp.PixelRepresentation = 0
jp.PixelData = encapsulate([buf.getvalue()]); jp['PixelData'].VR = 'OB'
jp.save_as(out + '/jpeg.dcm', write_like_original=False)
for name in ['be', 'deflated', 'rle', 'jpeg']:
    x = pydicom.dcmread(out + '/' + name + '.dcm').pixel_array.astype('<f4')
    x.tofile(out + '/' + name + '.f32')
`,
    src,
    tmp,
  ]);
  const ref = (name: string) => {
    const b = readFileSync(join(tmp, `${name}.f32`));
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  for (const name of ['be', 'deflated', 'rle', 'jpeg']) {
    it(`decodes ${name} like pydicom`, async () => {
      const v = await readDicomSeries(join(tmp, `${name}.dcm`));
      const r = ref(name);
      assert.equal(v.data.length, r.length);
      const tol = name === 'jpeg' ? 2 : 0; // two JPEG decoders may round the IDCT differently
      let worst = 0;
      for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(v.data[i]! - r[i]!));
      assert.ok(worst <= tol, `${name}: max difference ${worst}`);
      assert.deepEqual(v.size, [23, 38, 1]);
    });
  }
});

describe('series problems', () => {
  const write = (dir: string, slices: Parameters<typeof synthSlice>[0][]) => {
    const d = join(tmp, dir);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    slices.forEach((s, i) => writeFileSync(join(d, `s${i}.dcm`), synthSlice(s)));
    return d;
  };
  const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof MedsegIoError && e.code === c && (!re || re.test(e.message));

  it('reads a regular synthetic stack (our writer) with z spacing from positions', async () => {
    const d = write(
      'regular',
      [0, 2.5, 5, 7.5].map((z) => ({ z })),
    );
    const v = await readDicomSeries(d);
    assert.deepEqual(v.size, [5, 4, 4]);
    assertClose(v.spacing, [0.75, 0.5, 2.5], 1e-9, 'spacing');
    assert.ok(v.data instanceof Int16Array);
  });

  it('detects a missing middle slice, or accepts it with a warning', async () => {
    const d = write(
      'missing',
      [0, 2.5, 7.5, 10].map((z) => ({ z })),
    );
    await assert.rejects(readDicomSeries(d), code('MISSING_SLICES', /5\.000 mm between 2\.500 and 7\.500/));
    const v = await readDicomSeries(d, { allowGaps: true });
    assert.equal(v.size[2], 4);
    assert.match(String((v.meta.extra?.warnings as string[])[0]), /uneven/);
  });

  it('rejects mixed orientations', async () => {
    const d = write('mixed', [{ z: 0 }, { z: 1 }, { z: 2, iop: [0, 1, 0, 0, 0, -1] }]);
    await assert.rejects(readDicomSeries(d), code('INCONSISTENT_SERIES', /mixed orientations/));
  });

  it('rejects two series mixed in one list of files, listing both', async () => {
    const d = write('two', [{ z: 0 }, { z: 1 }, { z: 0, series: '2' }, { z: 1, series: '2' }]);
    await assert.rejects(readDicomSeries(d), code('INCONSISTENT_SERIES', /1\.2\.3\.2\.1 .*1\.2\.3\.2\.2/));
    const v = await readDicomSeries(d, { seriesInstanceUID: '1.2.3.2.2' });
    assert.equal(v.size[2], 2);
  });

  it('rejects two slices at the same position', async () => {
    const d = write('dup', [{ z: 0 }, { z: 1 }, { z: 1, sop: '1.2.9' }]);
    await assert.rejects(readDicomSeries(d), code('INCONSISTENT_SERIES', /same position/));
  });

  it('skips a truncated file in a folder with a warning naming it; the gap it leaves is MISSING_SLICES', async () => {
    const d = write(
      'cut',
      [0, 2.5, 5, 7.5].map((z) => ({ z })),
    );
    const cut = join(d, 's1.dcm');
    writeFileSync(cut, readFileSync(cut).subarray(0, 300));
    const skipped: SkippedFile[] = [];
    const list = await listDicomSeries(d, { onSkip: (f) => skipped.push(f) });
    assert.equal(list.length, 1);
    assert.equal(list[0]!.sliceCount, 3);
    assert.deepEqual(
      skipped.map((f) => [f.path, f.code]),
      [[cut, 'TRUNCATED']],
    );
    // Without onSkip the warning goes to Node's process warnings, naming the file.
    const warned: string[] = [];
    const onWarning = (w: Error) => warned.push(w.message);
    process.on('warning', onWarning);
    await listDicomSeries(d);
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    assert.ok(
      warned.some((m) => m.includes(cut) && /TRUNCATED/.test(m)),
      warned.join('\n'),
    );
    await assert.rejects(readDicomSeries(d), code('MISSING_SLICES', /unreadable files left out: .*s1\.dcm/));
    const v = await readDicomSeries(d, { allowGaps: true });
    assert.equal(v.size[2], 3);
    assert.ok((v.meta.extra?.warnings as string[]).some((w) => w.includes(cut)));
    // The last slice cut: no gap, the series reads with the warning.
    writeFileSync(cut, synthSlice({ z: 2.5 }));
    const last = join(d, 's3.dcm');
    writeFileSync(last, readFileSync(last).subarray(0, 500));
    const w = await readDicomSeries(d);
    assert.equal(w.size[2], 3);
    assert.match(String((w.meta.extra?.warnings as string[])[0]), /skipped .*s3\.dcm: TRUNCATED/);
    // Named explicitly, a bad file is still an error.
    await assert.rejects(readDicomSeries([last]), code('TRUNCATED'));
  });
});
