/**
 * Colour DICOM made by Debian's tools from a crop of a shared DRIVE fundus
 * image: dcmtk img2dcm wraps a 4:2:2 JPEG (.50, YBR_FULL_422), dcmdjpeg
 * decodes it to native RGB and (+cn) to native YBR_FULL, pydicom repacks that
 * as native YBR_FULL_422, and dcmcjpls (+in/+il/+is) / gdcmconv --j2k / dcmcjpeg +el
 * compress the RGB losslessly. Every file must read as planar RGB equal to
 * pydicom's pixel_array (with its YBR->RGB conversion), the lossless ones
 * bit-identical to the RGB original.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { run, skipUnless } from '../../testing/dicom-compressed.ts';
import { runPython } from '../../testing/python.ts';
import { readDicomSeries } from './series.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-dcm-colour-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

/** pydicom's RGB pixels of each file (HWC uint8) as planar float32 files. */
const REF = `
import sys, numpy as np, pydicom
from pydicom.pixel_data_handlers.util import convert_color_space
for path in sys.argv[1:]:
    d = pydicom.dcmread(path)
    a = d.pixel_array
    if d.PhotometricInterpretation in ('YBR_FULL', 'YBR_FULL_422'):
        a = convert_color_space(a, d.PhotometricInterpretation, 'RGB')
    np.ascontiguousarray(a.transpose(2, 0, 1)).astype('<f4').tofile(path + '.f32')
`;

describe('colour photometric interpretations', { skip: skipUnless(['img2dcm', 'dcmdjpeg', 'dcmcjpls', 'dcmcjpeg', 'gdcmconv']) }, () => {
  const made = (() => {
    if (skipUnless(['img2dcm', 'dcmdjpeg', 'dcmcjpls', 'dcmcjpeg', 'gdcmconv'])) return false;
    runPython([
      '-c',
      `
import sys
from PIL import Image
Image.open(sys.argv[1]).convert('RGB').crop((200, 200, 264, 248)).save(sys.argv[2], quality=90, subsampling=1)
`,
      dataPath('drive', 'training', 'images', '21_training.tif'),
      f('c.jpg'),
    ]);
    run('img2dcm', ['-i', 'JPEG', f('c.jpg'), f('jpeg422.dcm')]);
    run('dcmdjpeg', [f('jpeg422.dcm'), f('rgb.dcm')]);
    run('dcmdjpeg', ['+cn', f('jpeg422.dcm'), f('ybr.dcm')]);
    runPython([
      '-c',
      `
import sys, numpy as np, pydicom
d = pydicom.dcmread(sys.argv[1]); a = d.pixel_array
h, w, _ = a.shape
out = np.empty((h, w // 2, 4), np.uint8)
out[..., 0] = a[:, 0::2, 0]; out[..., 1] = a[:, 1::2, 0]; out[..., 2] = a[:, 0::2, 1]; out[..., 3] = a[:, 0::2, 2]
d.PhotometricInterpretation = 'YBR_FULL_422'; d.PixelData = out.tobytes(); d.save_as(sys.argv[2])
`,
      f('ybr.dcm'),
      f('ybr422.dcm'),
    ]);
    for (const il of ['in', 'il', 'is']) run('dcmcjpls', [`+${il}`, f('rgb.dcm'), f(`rgb-jpegls-${il}.dcm`)]);
    run('gdcmconv', ['--j2k', f('rgb.dcm'), f('rgb-j2k.dcm')]);
    run('dcmcjpeg', ['+el', f('rgb.dcm'), f('rgb-jpeg-lossless.dcm')]);
    runPython(['-c', REF, ...['jpeg422', 'rgb', 'ybr', 'ybr422'].map((n) => f(`${n}.dcm`))]);
    return true;
  })();
  const ref = (name: string) => {
    const b = readFileSync(f(`${name}.dcm.f32`));
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    assert.equal(a.length, b.length);
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    return m;
  };

  for (const [name, tol, what] of [
    ['rgb', 0, 'native RGB (pixel-interleaved)'],
    ['ybr', 1, 'native YBR_FULL, converted to RGB'],
    ['ybr422', 1, 'native YBR_FULL_422 (Y1 Y2 Cb Cr), converted to RGB'],
    ['jpeg422', 0, 'JPEG baseline YBR_FULL_422 (img2dcm), decoded to RGB by libjpeg-turbo'],
  ] as const) {
    it(`${what} matches pydicom${tol ? ` within ${tol}` : ''}`, async () => {
      assert.ok(made);
      const v = await readDicomSeries(f(`${name}.dcm`));
      assert.equal(v.channels, 3);
      assert.deepEqual(v.size, [64, 48, 1]);
      assert.match(String(v.meta.extra?.photometricInterpretation), /RGB/);
      const d = maxDiff(v.data, ref(name));
      console.log(`${name}: max difference from pydicom ${d}`);
      assert.ok(d <= tol, `max difference ${d}`);
    });
  }

  it('lossless colour JPEG-LS (each interleave mode), JPEG 2000 and JPEG lossless decode bit-identical to the RGB original', async () => {
    assert.ok(made);
    const rgb = await readDicomSeries(f('rgb.dcm'));
    const diffs: Record<string, number> = {};
    const names = ['rgb-jpegls-in', 'rgb-jpegls-il', 'rgb-jpegls-is', 'rgb-j2k', 'rgb-jpeg-lossless'];
    for (const name of names) diffs[name] = maxDiff((await readDicomSeries(f(`${name}.dcm`))).data, rgb.data);
    assert.deepEqual(diffs, Object.fromEntries(names.map((n) => [n, 0])));
  });
});
