/**
 * Compressed transfer syntaxes on real files made at test time by Debian's
 * tools (dcmtk dcmcjpeg / dcmcjpls, gdcm gdcmconv, OpenJPH ojph_compress) from
 * the shared CT series (int16, 16 bits stored) and from MR series our writer
 * makes from the shared hippocampus volumes (uint16 with 12 bits stored, and
 * uint8). Lossless syntaxes must decode bit-identical to the uncompressed
 * originals; lossy ones equal to, or within a stated tolerance of, the
 * decoding tool's own output (dcmdjpeg, dcmdjpls, gdcmconv --raw, ojph_expand).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { compressSeries, decompressSeries, rotation, skipUnless, SYNTAX, TOOL, writeSeries, type Compression } from '../../testing/dicom-compressed.ts';
import { MedsegIoError } from '../errors.ts';
import { readNifti } from '../nifti.ts';
import type { Volume } from '../volume.ts';
import { isCodecLoaded } from './codecs.ts';
import { T } from './dictionary.ts';
import { parseDicom } from './parse.ts';
import { readDicomSeries, readDicomSeriesFromBuffers } from './series.ts';
import { writeDicom } from './write.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-dcm-compressed-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const CT = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
const MR12 = join(tmp, 'mr12');
const MR8 = join(tmp, 'mr8');
const MR8_MONO1 = join(tmp, 'mr8-mono1');

/** MR series from the shared volumes: 12 bits stored, oblique; and 8-bit. */
const sources = (async () => {
  const v12 = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_003.nii.gz'));
  // A slab of slices: each tool runs once per file, and every file costs a process start.
  writeSeries(v12, MR12, { bitsAllocated: 16, bitsStored: 12, rotation: rotation(20, 10), seriesUID: '2.25.1001', zRange: [12, 18] });
  const v8 = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz'));
  writeSeries(v8, MR8, { bitsAllocated: 8, bitsStored: 8, seriesUID: '2.25.1002', zRange: [14, 18] });
  const mono1 = writeSeries(v8, MR8_MONO1, { bitsAllocated: 8, bitsStored: 8, seriesUID: '2.25.1003', photometric: 'MONOCHROME1', zRange: [14, 18] });
  return { mono1 };
})();

function diff(a: Volume, b: Volume): { max: number; differing: number } {
  assert.equal(a.data.length, b.data.length, 'voxel count');
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (d > 0) differing++;
    if (d > max) max = d;
  }
  return { max, differing };
}

function sameGeometry(a: Volume, b: Volume): void {
  assert.deepEqual(a.size, b.size);
  assert.deepEqual(a.spacing, b.spacing);
  assert.deepEqual(a.origin, b.origin);
  assert.deepEqual(a.direction, b.direction);
}

describe('codecs load lazily', () => {
  it('reading an uncompressed series loads no codec; a JPEG-LS series loads CharLS only', { skip: skipUnless(['dcmcjpls']) }, async () => {
    await readDicomSeries(CT);
    for (const c of ['charls', 'openjpeg', 'openjph', 'libjpeg-turbo', 'jpeg-lossless', 'dcmtk-jpeg'] as const) assert.equal(isCodecLoaded(c), false, c);
    compressSeries('jpegls', CT, join(tmp, 'lazy'));
    await readDicomSeries(join(tmp, 'lazy'));
    assert.equal(isCodecLoaded('charls'), true);
    assert.equal(isCodecLoaded('openjpeg'), false);
  });
});

describe('lossless syntaxes decode bit-identical to the uncompressed originals', () => {
  const lossless: Compression[] = ['jpeg-lossless', 'jpeg-lossless-sv1', 'jpegls', 'j2k', 'htj2k', 'htj2k-rpcl'];
  for (const c of lossless) {
    for (const [name, dir] of [
      ['CT int16', CT],
      ['MR 12-bit oblique', MR12],
    ] as const) {
      // Debian's OpenJPH 0.9 writes signed 16-bit samples that OpenJPEG 2.5 and current OpenJPH both decode
      // differently from its own ojph_expand (-2000 comes back as 32767), so HTJ2K is made from unsigned data only.
      if (c.startsWith('htj2k') && name.startsWith('CT')) continue;
      it(`${c} (${SYNTAX[c]}) on ${name}`, { skip: skipUnless([TOOL[c]]) }, async () => {
        await sources;
        const out = join(tmp, `${c}-${name.split(' ')[0]}`);
        compressSeries(c, dir, out);
        const [orig, dec] = await Promise.all([readDicomSeries(dir), readDicomSeries(out)]);
        assert.equal(dec.meta.extra?.transferSyntaxUID, SYNTAX[c]);
        sameGeometry(dec, orig);
        assert.equal(dec.data.constructor, orig.data.constructor);
        const d = diff(dec, orig);
        assert.equal(d.differing, 0, `${d.differing} voxels differ (max ${d.max})`);
      });
    }
  }
});

describe('lossy syntaxes match the tools that decode them', () => {
  const cases: { c: Compression; dir: string; name: string; tool: 'dcmdjpeg' | 'dcmdjpls' | 'gdcmconv' | 'ojph_expand'; vsTool: number; vsOrig: number }[] = [
    // JPEG-LS near-lossless: CharLS on both sides, so identical; the codec's bound is NEAR.
    { c: 'jpegls-near', dir: MR12, name: 'MR 12-bit', tool: 'dcmdjpls', vsTool: 0, vsOrig: 2 },
    { c: 'jpegls-near-gdcm', dir: CT, name: 'CT int16', tool: 'gdcmconv', vsTool: 0, vsOrig: 3 },
    // JPEG 2000 irreversible (9/7 wavelet in floating point): OpenJPEG builds may round a sample differently.
    { c: 'j2k-lossy', dir: CT, name: 'CT int16', tool: 'gdcmconv', vsTool: 1, vsOrig: Infinity },
    { c: 'j2k-lossy', dir: MR12, name: 'MR 12-bit', tool: 'gdcmconv', vsTool: 1, vsOrig: Infinity },
    { c: 'htj2k-lossy', dir: MR12, name: 'MR 12-bit', tool: 'ojph_expand', vsTool: 1, vsOrig: Infinity },
    // 8-bit DCT JPEG: libjpeg-turbo vs dcmtk's IJG decoder, both islow IDCT.
    { c: 'jpeg-baseline', dir: MR8, name: 'MR 8-bit', tool: 'dcmdjpeg', vsTool: 1, vsOrig: Infinity },
    { c: 'jpeg-extended', dir: MR8, name: 'MR 8-bit', tool: 'dcmdjpeg', vsTool: 1, vsOrig: Infinity },
    // 12-bit DCT JPEG: DCMTK's 12-bit IJG build (dcmjs-codecs) vs dcmdjpeg's; IJG IDCTs may differ by 1.
    { c: 'jpeg-extended', dir: MR12, name: 'MR 12-bit', tool: 'dcmdjpeg', vsTool: 1, vsOrig: Infinity },
    { c: 'jpeg-extended', dir: CT, name: 'CT int16', tool: 'dcmdjpeg', vsTool: 1, vsOrig: Infinity },
  ];
  for (const k of cases) {
    it(`${k.c} (${SYNTAX[k.c]}) on ${k.name} vs ${k.tool}`, { skip: skipUnless([TOOL[k.c], k.tool]) }, async () => {
      await sources;
      const out = join(tmp, `${k.c}-${k.name.split(' ')[0]}`);
      const refs = compressSeries(k.c, k.dir, out);
      const [orig, dec] = await Promise.all([readDicomSeries(k.dir), readDicomSeries(out)]);
      assert.equal(dec.meta.extra?.transferSyntaxUID, SYNTAX[k.c]);
      sameGeometry(dec, orig);
      let vsTool: { max: number; differing: number };
      if (k.tool === 'ojph_expand') {
        // OpenJPH's own decode of each codestream (16-bit little endian samples; files are in z order).
        const ref: Volume = { ...orig, data: new Uint16Array(orig.data.length) };
        const plane = orig.size[0] * orig.size[1];
        refs.forEach((b, z) => ref.data.set(new Uint16Array(Uint8Array.from(b).buffer, 0, plane), z * plane));
        vsTool = diff(dec, ref);
      } else {
        const refDir = `${out}-ref`;
        decompressSeries(k.tool, out, refDir);
        vsTool = diff(dec, await readDicomSeries(refDir));
      }
      const vsOrig = diff(dec, orig);
      console.log(`${k.c} ${k.name}: vs ${k.tool} max ${vsTool.max} (${vsTool.differing} voxels), vs original max ${vsOrig.max}`);
      assert.ok(vsTool.max <= k.vsTool, `vs ${k.tool}: max difference ${vsTool.max} over ${vsTool.differing} voxels`);
      assert.ok(vsOrig.max <= k.vsOrig, `vs the original: max difference ${vsOrig.max}`);
      assert.ok(vsOrig.differing > 0 || k.c.startsWith('jpegls'), 'a lossy syntax that changed nothing: the test would not see a wrong decoder');
    });
  }

  it('12-bit DCT JPEG (extended, .51) loads the 12-bit decoder; a corrupt 12-bit frame is a typed error', { skip: skipUnless(['dcmcjpeg']) }, async () => {
    await sources;
    const out = join(tmp, 'jpeg-extended-12');
    compressSeries('jpeg-extended', MR12, out);
    await readDicomSeries(out);
    assert.equal(isCodecLoaded('dcmtk-jpeg'), true);
    const name = readdirSync(out)[0]!;
    const f = parseDicom(readFileSync(join(out, name)));
    const px = f.dataset.get(T.PixelData)!;
    const frame = Uint8Array.from(px.fragments![0]!);
    // The scan names a component the frame does not have: IJG stops with an error (damaged entropy data only warns).
    const sos = frame.findIndex((v, i) => v === 0xff && frame[i + 1] === 0xda);
    frame[sos + 5] = 0x77;
    f.dataset.set({ ...px, fragments: [frame], offsetTable: new Uint8Array(0) });
    const bytes = writeDicom(f.dataset, { transferSyntaxUID: f.transferSyntaxUID });
    await assert.rejects(readDicomSeriesFromBuffers([{ name, bytes }]), (e: unknown) => e instanceof MedsegIoError && /dcmtk-jpeg|12-bit/.test(e.message));
  });
});

describe('photometric interpretation', () => {
  it('MONOCHROME1 is inverted after decoding (JPEG-LS), and kept on request', { skip: skipUnless(['dcmcjpls']) }, async () => {
    const { mono1 } = await sources;
    const out = join(tmp, 'mono1-jpegls');
    compressSeries('jpegls', MR8_MONO1, out);
    const v = await readDicomSeries(out);
    assert.match(String(v.meta.extra?.photometricInterpretation), /MONOCHROME1 \(inverted/);
    let bad = 0;
    for (let i = 0; i < mono1.length; i++) if (v.data[i] !== 255 - mono1[i]!) bad++;
    assert.equal(bad, 0);
    const kept = await readDicomSeries(out, { invertMonochrome1: false });
    assert.deepEqual(Array.from(kept.data.subarray(0, 500)), Array.from(mono1.subarray(0, 500)));
  });
});
