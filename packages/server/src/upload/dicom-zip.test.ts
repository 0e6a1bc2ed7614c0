/**
 * DICOM zip uploads, on archives written by Python's zipfile: the shared CT
 * series reads back as the library reads the folder; hostile archives
 * (names that leave their folder, a bomb, a directory that understates
 * sizes, too many entries, no DICOM, not a zip) are refused with a reason.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readDicomSeries } from '@medseg/medseg/io/dicom/series';
import { ctSeries, tempDir } from '../testing/fixture.ts';
import { writeZip } from '../testing/zip.ts';
import { DicomZipError, readDicomZip } from './dicom-zip.ts';
import { sniffUpload } from './sniff.ts';

const dir = tempDir('medseg-zip-');
after(() => rmSync(dir, { recursive: true, force: true }));
const ct = ctSeries();
const slices = ['01.dcm', '02.dcm', '03.dcm'].map((n) => join(ct.dir, n));
const LIMITS = { maxDecompressedBytes: 10 * 1024 ** 2, maxVoxelBytes: 1024 ** 3 };
let n = 0;
const zip = (entries: Parameters<typeof writeZip>[1], o: { understate?: boolean } = {}) => {
  const out = join(dir, `z${++n}.zip`);
  writeZip(out, entries, o);
  return out;
};
const refused = (status: number, code: RegExp, message: RegExp) => (e: unknown) =>
  e instanceof DicomZipError && e.statusCode === status && code.test(e.code) && message.test(e.message);

test('a zip of the CT series (in folders, beside a README) reads as the folder does, and is sniffed as a zip', async () => {
  const path = zip([
    { name: 'study/', bytes: new Uint8Array(0) },
    { name: 'study/README.txt', bytes: Buffer.from('not DICOM') },
    ...slices.map((file, i) => ({ name: `study/series/IM${i}`, file })),
  ]);
  assert.deepEqual(sniffUpload(readFileSync(path).subarray(0, 4096)), { ok: true, format: 'dicom-zip' });
  const got = await readDicomZip(path, LIMITS);
  const want = await readDicomSeries(ct.dir);
  assert.deepEqual([got.size, got.spacing, got.origin, got.direction], [want.size, want.spacing, want.origin, want.direction]);
  assert.deepEqual(got.meta.sopInstanceUIDs, want.meta.sopInstanceUIDs);
  assert.deepEqual(got.data, want.data);
  assert.equal((await readDicomZip(path, { ...LIMITS, seriesInstanceUid: want.meta.seriesInstanceUID })).size[2], 3);
  await assert.rejects(readDicomZip(path, { ...LIMITS, seriesInstanceUid: '1.2.3' }), refused(400, /INVALID_NOT_FOUND/, /series 1\.2\.3 not found/));
});

test('names that leave their folder (zip slip) refuse the whole archive', async () => {
  for (const name of ['../../etc/cron.d/evil', '/etc/passwd', 'a/../../b.dcm', 'dir\\..\\..\\evil.dcm']) {
    const path = zip([
      { name: 'ok.dcm', file: slices[0] },
      { name, file: slices[1] },
    ]);
    await assert.rejects(readDicomZip(path, LIMITS), refused(400, /ZIP_SLIP/, /leaves its folder/), name);
  }
});

test('zip bombs are refused before inflating (declared sizes) or while inflating (a directory that lies)', async () => {
  const bomb = zip([{ name: 'zeros.dcm', zeros: 50 * 1024 ** 2 }]);
  await assert.rejects(readDicomZip(bomb, LIMITS), refused(413, /ZIP_TOO_LARGE/, /10485760-byte limit/));
  const liar = zip([{ name: 'a.dcm', file: slices[0] }], { understate: true });
  await assert.rejects(readDicomZip(liar, LIMITS), refused(400, /ZIP_SIZE_MISMATCH/, /another size/));
  const many = zip(Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, bytes: Buffer.from('x') })));
  await assert.rejects(readDicomZip(many, { ...LIMITS, maxEntries: 5 }), refused(413, /ZIP_TOO_MANY_ENTRIES/, /6 entries/));
});

test('archives without DICOM, and files that are no zip, are refused with a reason', async () => {
  await assert.rejects(readDicomZip(zip([{ name: 'notes.txt', bytes: Buffer.from('hello') }]), LIMITS), refused(400, /ZIP_NO_DICOM/, /no DICOM file/));
  const cut = join(dir, 'cut.zip');
  const whole = readFileSync(zip([{ name: 'a.dcm', file: slices[0] }]));
  writeFileSync(cut, whole.subarray(0, whole.length >> 1));
  await assert.rejects(readDicomZip(cut, LIMITS), refused(400, /BAD_ZIP/, /cannot be read/));
});
