import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { MedsegIoError } from '../errors.ts';
import { T } from './dictionary.ts';
import { parseDicom, TS } from './parse.ts';
import { parseDicomSeg, readDicomSeg } from './seg-read.ts';
import { readDicomSeries, readDicomSeriesFromBuffers } from './series.ts';
import { synthSlice } from '../../testing/dicom-synth.ts';
import { writeDicom } from './write.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const tmp = mkdtempSync(join(tmpdir(), 'medseg-dcm-bad-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const code = (c: string) => (e: unknown) => {
  assert.ok(e instanceof MedsegIoError, `not a MedsegIoError: ${String(e)}`);
  assert.equal(e.code, c, e.message);
  return true;
};
const one = (bytes: Uint8Array) => readDicomSeriesFromBuffers([{ name: 'x.dcm', bytes }]);

describe('bad DICOM input gives typed errors', () => {
  const ct = readFileSync(D('ct-3slice/01.dcm'));

  it('truncated files', async () => {
    await assert.rejects(one(ct.subarray(0, ct.length - 1000)), code('TRUNCATED'));
    await assert.rejects(one(ct.subarray(0, 140)), code('TRUNCATED'));
    const p = join(tmp, 'cut.dcm');
    writeFileSync(p, ct.subarray(0, 3000));
    await assert.rejects(readDicomSeries([p]), code('TRUNCATED'));
    const seg = readFileSync(D('liver.dcm'));
    assert.throws(() => parseDicomSeg(seg.subarray(0, seg.length - 50)), code('TRUNCATED'));
  });

  it('files that are not DICOM', async () => {
    await assert.rejects(one(readFileSync(D('liver_seg.nrrd'))), code('BAD_MAGIC'));
    await assert.rejects(one(new Uint8Array(10)), code('BAD_MAGIC'));
    await assert.rejects(readDicomSeries([D('PROVENANCE.txt')]), code('BAD_MAGIC'));
    await assert.rejects(readDicomSeries(D('no-such-folder')), code('NOT_FOUND'));
    await assert.rejects(readDicomSeg(D('ct-3slice/01.dcm')), code('UNSUPPORTED'));
  });

  it('missing pixel data', async () => {
    await assert.rejects(one(synthSlice({ z: 0, noPixels: true })), code('BAD_DATA'));
  });

  it('absurd Rows/Columns/NumberOfFrames are refused before allocating', async () => {
    const big = { maxBytes: 64 * 2 ** 20, maxDecompressedBytes: 2 ** 28 };
    await assert.rejects(
      readDicomSeriesFromBuffers([{ name: 'a', bytes: synthSlice({ z: 0, rows: 65535, columns: 65535 }) }], { limits: big }),
      code('TOO_LARGE'),
    );
    await assert.rejects(one(synthSlice({ z: 0, frames: 2 ** 31 - 1 })), code('TOO_LARGE'));
    await assert.rejects(one(synthSlice({ z: 0, frames: 1000 })), code('TRUNCATED'));
    // SEG claiming a billion frames.
    const seg = parseDicom(readFileSync(D('liver.dcm')));
    seg.dataset.set({ tag: T.NumberOfFrames, vr: 'IS', bytes: Buffer.from('999999999 '), littleEndian: true });
    assert.throws(() => parseDicomSeg(writeDicom(seg.dataset), { limits: big }), code('TOO_LARGE'));
    seg.dataset.set({ tag: T.NumberOfFrames, vr: 'IS', bytes: Buffer.from('10'), littleEndian: true });
    assert.throws(() => parseDicomSeg(writeDicom(seg.dataset)), code('TRUNCATED'));
  });

  it('unsupported transfer syntax names the UID', async () => {
    const f = parseDicom(ct);
    const el = f.dataset.get(T.PixelData)!;
    f.dataset.set({ ...el, fragments: [el.bytes], offsetTable: new Uint8Array(0), bytes: new Uint8Array(0) });
    const jpegXl = '1.2.840.10008.1.2.4.110';
    await assert.rejects(
      one(writeDicom(f.dataset, { transferSyntaxUID: jpegXl })),
      (e: unknown) => code('UNSUPPORTED')(e) && /1\.2\.840\.10008\.1\.2\.4\.110/.test((e as Error).message),
    );
    // A supported compressed syntax whose fragment is not a codestream of that kind.
    await assert.rejects(one(writeDicom(f.dataset, { transferSyntaxUID: TS.J2kLossless })), code('CORRUPT'));
    await assert.rejects(one(writeDicom(f.dataset, { transferSyntaxUID: TS.JpegLsLossless })), code('CORRUPT'));
  });
});
