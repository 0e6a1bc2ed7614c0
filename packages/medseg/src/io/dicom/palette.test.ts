/**
 * PALETTE COLOR on tool-made files: dcmtk's dcmquant quantises an RGB crop of
 * a shared DRIVE fundus image to a palette (256 colours with 8-bit entries,
 * with 16-bit entries, and 1000 colours, so 16-bit indices); pydicom writes
 * 12-bit MR slices (a shared hippocampus volume) with a 16-bit table whose
 * first mapped value is above the smallest stored value (clipping at both
 * ends), and 8-bit slices coloured by the segmented tables of DICOM's
 * well-known palettes (Spring, Fall, as python3-pydicom ships them) and the
 * plain Hot Iron one. Every file must read as planar RGB equal to pydicom's
 * apply_color_lut.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { run, skipUnless } from '../../testing/dicom-compressed.ts';
import { runPython } from '../../testing/python.ts';
import { MedsegIoError } from '../errors.ts';
import { expandSegmentedLut } from './palette.ts';
import { readDicomSeries } from './series.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-palette-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, `${name}.dcm`);

const MAKE = `
import sys, numpy as np, nibabel as nib, pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.data import get_palette_files
out, drive, hippo = sys.argv[1:4]

def base(rows, cols, bits, stored, pixels):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.1'
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
    ds.file_meta.MediaStorageSOPInstanceUID = '2.25.%d' % (rows * 1000 + cols + bits)
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = '2.25.11'
    ds.SeriesInstanceUID = '2.25.12' + str(bits)
    ds.Modality = 'OT'
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, stored, stored - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'PALETTE COLOR'
    ds.PixelData = pixels.tobytes()
    return ds

# RGB source for dcmquant: a crop of the fundus image.
rgb = np.asarray(Image.open(drive).convert('RGB').crop((200, 200, 264, 248)))
ds = base(rgb.shape[0], rgb.shape[1], 8, 8, rgb)
ds.SamplesPerPixel = 3
ds.PhotometricInterpretation = 'RGB'
ds.PlanarConfiguration = 0
ds.save_as(out + '/rgb.dcm', write_like_original=False)

# 12-bit MR slice, 16-bit table of 3000 entries from 500: values below 500 and above 3499 clip.
mr = np.asarray(nib.load(hippo).dataobj)[:, :, 15].T.astype(np.float64)
mr = np.round(mr / mr.max() * 4095).astype('<u2')
ds = base(mr.shape[0], mr.shape[1], 16, 12, mr)
n, first = 3000, 500
t = np.linspace(0, 1, n)
for c, lut in zip('Red Green Blue'.split(), [t, t ** 2, 1 - t]):
    setattr(ds, c + 'PaletteColorLookupTableDescriptor', [n, first, 16])
    ds.add_new(getattr(pydicom.datadict, 'tag_for_keyword')(c + 'PaletteColorLookupTableData'), 'OW', np.round(lut * 65535).astype('<u2').tobytes())
ds.save_as(out + '/mr16.dcm', write_like_original=False)

# 8-bit slices coloured by the well-known palettes (segmented: Spring, Fall; plain: Hot Iron).
mr8 = np.round(mr / 4095 * 255).astype(np.uint8)
for name in ['spring', 'fall', 'hotiron']:
    pal = pydicom.dcmread(get_palette_files(name + '.dcm')[0])
    ds = base(mr8.shape[0], mr8.shape[1], 8, 8, mr8)
    for e in pal:
        if e.tag.group == 0x0028 and 0x1100 <= e.tag.element <= 0x1223:
            ds.add(e)
    ds.save_as(out + '/' + name + '.dcm', write_like_original=False)
`;

/**
 * pydicom's apply_color_lut of each file, planar float32. With 8-bit entries
 * pydicom computes the indices in uint8, so indices past 255 wrap; for those
 * files the same table goes in widened to 16-bit words (same values).
 */
const REF = `
import sys, numpy as np, pydicom
from pydicom.pixel_data_handlers.util import apply_color_lut
for p in sys.argv[1:]:
    d = pydicom.dcmread(p)
    a = d.pixel_array
    n = d.RedPaletteColorLookupTableDescriptor[0] or 65536
    if 'RedPaletteColorLookupTableData' in d and a.max() > 255:
        for c in ('Red', 'Green', 'Blue'):
            e = d[c + 'PaletteColorLookupTableData']
            if len(e.value) == n:
                e.value = np.frombuffer(e.value, np.uint8).astype('<u2').tobytes()
    rgb = apply_color_lut(a, d)
    np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype('<f4').tofile(p + '.f32')
    print(p, rgb.dtype, d.RedPaletteColorLookupTableDescriptor, file=sys.stderr)
`;

const CASES: [name: string, what: string, type: string][] = [
  ['quant256', 'dcmquant, 256 colours, 8-bit entries', 'uint8'],
  ['quant256w', 'dcmquant +pe, 16-bit entries', 'uint16'],
  ['quant1000', 'dcmquant +pc 1000: 16-bit indices', 'uint8'],
  ['mr16', 'pydicom, 12-bit indices, 16-bit table from 500 (clipped at both ends)', 'uint16'],
  ['spring', 'segmented 8-bit Spring palette', 'uint8'],
  ['fall', 'segmented 8-bit Fall palette', 'uint8'],
  ['hotiron', 'plain Hot Iron palette', 'uint8'],
];

describe('PALETTE COLOR', { skip: skipUnless(['dcmquant']) }, () => {
  const made = (() => {
    if (skipUnless(['dcmquant'])) return false;
    runPython(['-c', MAKE, tmp, dataPath('drive', 'training', 'images', '21_training.tif'), dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz')]);
    run('dcmquant', [f('rgb'), f('quant256')]);
    run('dcmquant', ['+pe', f('rgb'), f('quant256w')]);
    run('dcmquant', ['+pc', '1000', f('rgb'), f('quant1000')]);
    runPython(['-c', REF, ...CASES.map(([n]) => f(n))]);
    return true;
  })();

  for (const [name, what, type] of CASES) {
    it(`${what} reads as RGB equal to pydicom's apply_color_lut`, async () => {
      assert.ok(made);
      const v = await readDicomSeries(f(name));
      assert.equal(v.channels, 3);
      assert.equal(v.meta.extra?.photometricInterpretation, 'PALETTE COLOR (decoded to RGB)');
      const b = readFileSync(`${f(name)}.f32`);
      const ref = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      assert.equal(v.data.length, ref.length);
      let differing = 0;
      for (let i = 0; i < ref.length; i++) if (v.data[i] !== ref[i]) differing++;
      assert.equal(differing, 0, `${differing} samples differ from pydicom`);
      // Not a constant image: the table really maps.
      assert.ok(new Set(v.data).size > 16);
      if (name !== 'quant1000') assert.equal(v.data.constructor.name, type === 'uint8' ? 'Uint8Array' : 'Uint16Array');
    });
  }

  it('segmented tables: linear segments round half to even, indirect ones copy; malformed or oversized data is CORRUPT', () => {
    // discrete [0, 10], linear to 13 over 2 (11.5 -> 12, 13), indirect copy of the first segment (0, 10)
    assert.deepEqual(expandSegmentedLut([0, 2, 0, 10, 1, 2, 13, 2, 1, 0, 0], 2), [0, 10, 12, 13, 0, 10]);
    assert.deepEqual(expandSegmentedLut([0, 1, 0, 1, 4, 2], 1), [0, 0, 1, 2, 2]);
    for (const bad of [
      [1, 4, 9], // linear first
      [0, 9, 1, 2], // discrete past the end
      [0, 1, 5, 2, 1, 3, 0], // an indirect segment copying an indirect one
      [0, 1, 5, 7, 1], // unknown opcode
      [0, 1, 5, 1, 65535, 9, 1, 65535, 9], // past 65536 entries
    ]) {
      assert.throws(
        () => expandSegmentedLut(bad, 2),
        (e: unknown) => e instanceof MedsegIoError && e.code === 'CORRUPT',
        JSON.stringify(bad),
      );
    }
  });
});
