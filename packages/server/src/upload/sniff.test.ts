import { strict as assert } from 'node:assert';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { encodeVolume } from '@medseg/medseg/io/read';
import type { Volume } from '@medseg/medseg/io/volume';
import { SNIFF_BYTES, sniffUpload } from './sniff.ts';
import { checkFileName, UploadError } from './receive.ts';

const vol: Volume = {
  size: [4, 3, 2],
  spacing: [1, 1, 1],
  origin: [0, 0, 0],
  direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
  channels: 1,
  data: new Uint8Array(24).map((_, i) => i % 3),
  meta: {},
} as unknown as Volume;

const head = (b: Uint8Array) => b.subarray(0, SNIFF_BYTES);

test('formats are told by their bytes, whatever the name', () => {
  assert.deepEqual(sniffUpload(head(encodeVolume('x.nii', vol))), { ok: true, format: 'nifti' });
  assert.deepEqual(sniffUpload(head(encodeVolume('x.nii.gz', vol))), { ok: true, format: 'nifti-gz' });
  assert.deepEqual(sniffUpload(head(encodeVolume('x.nrrd', vol))), { ok: true, format: 'nrrd' });
  const oneSlice = { ...vol, size: [4, 3, 1], data: new Uint8Array(12) } as Volume;
  assert.deepEqual(sniffUpload(head(encodeVolume('x.png', oneSlice))), { ok: true, format: 'png' });
});

test('other content, compressed non-NIfTI, and detached NRRD headers are refused with a reason', () => {
  const no = (b: Uint8Array, re: RegExp) => {
    const r = sniffUpload(b);
    assert.ok(!r.ok && re.test(r.message), JSON.stringify(r));
  };
  no(Buffer.from('{"model": "x"}'), /unrecognised file content/);
  no(new Uint8Array(1000), /unrecognised/);
  no(gzipSync(Buffer.from('hello world '.repeat(100))), /gzip-compressed but holds no single-file NIfTI/);
  no(Buffer.from('NRRD0004\ntype: uint8\ndimension: 1\nsizes: 10\nencoding: raw\ndata file: /etc/passwd\n\n'), /detached NRRD/);
  no(Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0]), /gzip/);
});

test('file names that leave their folder or carry control characters are refused', () => {
  for (const bad of ['../../etc/passwd.nii.gz', '..', 'a/b.nii', 'a\\b.nii', 'x\u0000.nii', 'x\n.nii']) {
    assert.throws(
      () => checkFileName(bad),
      (e: unknown) => e instanceof UploadError && e.statusCode === 400,
      bad,
    );
  }
  for (const good of [undefined, '', 'case_001.nii.gz', 'scan..v2.nrrd', 'Bild 1.png']) checkFileName(good);
});
