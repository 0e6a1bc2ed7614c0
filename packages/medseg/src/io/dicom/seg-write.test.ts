import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { dicomLabToRgb, rgbToDicomLab } from './color.ts';
import { runRef } from '../../testing/dicom-ref.ts';
import { parseDicomSeg, readDicomSeg, segLabelmap } from './seg-read.ts';
import { writeDicomSeg } from './seg-write.ts';
import { readDicomSeries } from './series.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const tmp = mkdtempSync(join(tmpdir(), 'medseg-segw-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface SegRef {
  sopClassUID: string;
  numberOfFrames: number;
  segmentationType: string;
  segments: { number: number; label: string; lab: number[] }[];
  frames: { ref: string; segment: number; position: number[] }[];
  patientID: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
}

describe('writeDicomSeg', async () => {
  const ct = await readDicomSeries(D('ct-3slice'));
  const src = await readDicomSeg(D('partial_overlaps.dcm'), { source: ct });
  const masks = src.masks!;
  const segs = src.segments.map((s) => ({ number: s.number, label: s.label, rgb: s.rgb, algorithmType: 'MANUAL' as const }));
  const [nx, ny, nz] = ct.size;
  const plane = nx * ny;

  it('round trips overlapping masks and geometry through our reader', async () => {
    const bytes = await writeDicomSeg(masks, ct, segs);
    const back = parseDicomSeg(bytes, { source: ct });
    assert.equal(back.segments.length, 5);
    for (const s of segs) {
      const a = masks.get(s.number)!;
      const b = back.masks!.get(s.number)!;
      assert.deepEqual(b.size, a.size);
      assert.deepEqual(b.origin, a.origin);
      assert.deepEqual(b.spacing, a.spacing);
      assert.deepEqual(b.direction, a.direction);
      assert.deepEqual(b.data, a.data, `segment ${s.number}`);
      assert.equal(back.segments.find((x) => x.number === s.number)!.label, s.label);
    }
  });

  it('is read by pydicom: segments, frames, references and bit-packed pixels', async () => {
    const path = join(tmp, 'po.dcm');
    await writeDicomSeg(masks, ct, segs, { path, seriesDescription: 'medseg test' });
    const all = join(tmp, 'all.dcm');
    await writeDicomSeg(masks, ct, segs, { path: all, allFrames: true });
    const [r, rAll] = runRef<SegRef>([
      { op: 'seginfo', file: path },
      { op: 'seginfo', file: all },
    ]);
    const info = r!.info;
    assert.equal(info.sopClassUID, '1.2.840.10008.5.1.4.1.1.66.4');
    assert.equal(info.segmentationType, 'BINARY');
    assert.deepEqual(
      info.segments.map((s) => s.number),
      [1, 2, 3, 4, 5],
    );
    // Expected frames: one per non-empty (segment, slice), counted here from the masks.
    let expected = 0;
    for (const m of masks.values()) for (let z = 0; z < nz; z++) if (m.data.subarray(z * plane, (z + 1) * plane).some((v) => v)) expected++;
    assert.equal(info.numberOfFrames, expected);
    assert.equal(rAll!.info.numberOfFrames, 5 * nz);
    assert.equal(info.studyInstanceUID, ct.meta.studyInstanceUID);
    assert.equal(info.frameOfReferenceUID, ct.meta.frameOfReferenceUID);
    assert.equal(info.patientID, ct.meta.patientId);
    assert.notEqual(info.seriesInstanceUID, ct.meta.seriesInstanceUID);
    assert.match(info.seriesInstanceUID, /^2\.25\.\d+$/);
    const px = r!.data!; // pydicom's own unpacking of our bits, frame by frame
    info.frames.forEach((f, k) => {
      const z = Math.round((f.position[2]! - ct.origin[2]) / ct.spacing[2]);
      assert.equal(f.ref, ct.meta.sopInstanceUIDs![z], `frame ${k + 1} references the slice at its position`);
      const m = masks.get(f.segment)!.data;
      for (let i = 0; i < plane; i++) {
        if (px[k * plane + i] !== m[z * plane + i]) assert.fail(`frame ${k + 1} pixel ${i} differs`);
      }
    });
  });

  it('writes a label map input and de-identifies on request', async () => {
    const img = await readDicomSeries(D('23x38x3/image'));
    const seg = await readDicomSeg(D('23x38x3/seg/label.seg'), { source: img });
    const lm = segLabelmap(seg, img).labelmap;
    const bytes = await writeDicomSeg(lm, img, [{ number: 1, label: 'Liver', algorithmType: 'AUTOMATIC', algorithmName: 'unet' }], {
      deidentify: { patientName: 'ANON^X' },
    });
    const back = parseDicomSeg(bytes, { source: img });
    assert.deepEqual(segLabelmap(back, img).labelmap.data, lm.data);
    assert.equal(back.meta.patientName, 'ANON^X');
    assert.notEqual(back.meta.studyInstanceUID, img.meta.studyInstanceUID);
    assert.equal(back.segments[0]!.algorithmName, 'unet');
  });
});

describe('colour', () => {
  it('RGB -> CIELab -> RGB returns the colour', () => {
    for (const rgb of [
      [221, 130, 101],
      [0, 0, 0],
      [255, 255, 255],
      [12, 200, 40],
    ] as [number, number, number][]) {
      const back = dicomLabToRgb(rgbToDicomLab(rgb));
      rgb.forEach((c, i) => assert.ok(Math.abs(back[i]! - c) <= 1, `${rgb} -> ${back}`));
    }
  });
});
