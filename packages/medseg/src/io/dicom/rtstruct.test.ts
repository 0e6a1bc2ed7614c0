/**
 * RTSTRUCT writer and reader on real data: the shared CT series with dcmqi's
 * liver + spine label map, its enhanced multi-frame copy, and hippocampus MR
 * series our writer makes from the shared MSD volume (axial, and oblique).
 * Each RTSTRUCT must pass dicom3tools' dciodvfy with no error; pydicom reads
 * it and scikit-image rasterises every contour on the pixel centres of the
 * image it references (Dice >= 0.98 per label against the original mask,
 * points in that image's plane, areas equal to the labelled pixels); medseg's
 * reader rasterises it back to the same label map.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { dciodvfy, skipWithoutDciodvfy } from '../../testing/dciodvfy.ts';
import { rotation, writeSeries } from '../../testing/dicom-compressed.ts';
import { runResultsRef } from '../../testing/results-ref.ts';
import { MedsegIoError } from '../errors.ts';
import { readNifti } from '../nifti.ts';
import { readVolume } from '../read.ts';
import type { Volume } from '../volume.ts';
import { readRtStruct, rtstructLabelmap, rtstructMasks } from './rtstruct-read.ts';
import { buildRtStruct, writeRtStruct, type RoiDescription } from './rtstruct-write.ts';
import { readDicomSeg, segLabelmap } from './seg-read.ts';
import { defaultSegmentCodes } from './segment-codes.ts';
import { readDicomSeries } from './series.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const tmp = mkdtempSync(join(tmpdir(), 'medseg-rtstruct-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const skip = skipWithoutDciodvfy();

interface RefRt {
  sopClassUID: string;
  modality: string;
  frameOfReference: string;
  referencedStudy: string;
  referencedSeries: string;
  contourImages: string[];
  studyInstanceUID: string;
  rois: {
    number: number;
    name: string;
    generationAlgorithm: string;
    frameOfReference: string;
    color: number[];
    contours: number;
    code: { value: string; scheme: string; meaning: string } | null;
    interpretedType: string | null;
    algorithmName: string | null;
    signedArea: Record<string, number>;
  }[];
  worstPlaneDistance: number;
  badReferences: number;
}

const files = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .map((f) => join(dir, f));

function roisFor(names: Record<number, string>, context?: string): RoiDescription[] {
  return Object.entries(names).map(([k, name]) => {
    const c = defaultSegmentCodes(name, context);
    return {
      number: Number(k),
      name,
      code: c.type,
      interpretedType: 'ORGAN',
      algorithmType: 'AUTOMATIC' as const,
      algorithmName: 'test-model (unet)',
      algorithmVersion: '9.8.7',
    };
  });
}

function dice(a: ArrayLike<number>, b: ArrayLike<number>, label: number, offsetB = 0): number {
  let inter = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] === label;
    const y = b[offsetB + i] === 1;
    if (x) na++;
    if (y) nb++;
    if (x && y) inter++;
  }
  return na + nb === 0 ? 1 : (2 * inter) / (na + nb);
}

interface Case {
  name: string;
  source: Volume;
  sourceFiles: string[];
  labels: Volume;
  names: Record<number, string>;
  path: string;
}

describe('RTSTRUCT conformance', { skip }, () => {
  const cases: Case[] = [];
  let refs: { info: RefRt; data: Float32Array }[];

  before(async () => {
    const ct = await readDicomSeries(D('ct-3slice'));
    const ctLabels = await readVolume(D('liver_spine_seg.nrrd'));
    cases.push({
      name: 'CT',
      source: ct,
      sourceFiles: files(D('ct-3slice')),
      labels: ctLabels,
      names: { 1: 'Liver', 2: 'Spine' },
      path: join(tmp, 'ct.rtstruct.dcm'),
    });

    const mf = await readDicomSeries(D('23x38x3/multiframe/mf.dcm'));
    const img23 = await readDicomSeries(D('23x38x3/image'));
    const mfLabels = segLabelmap(await readDicomSeg(D('23x38x3/seg/label.seg'), { source: img23 }), mf).labelmap;
    cases.push({
      name: 'multi-frame',
      source: mf,
      sourceFiles: [D('23x38x3/multiframe/mf.dcm')],
      labels: mfLabels,
      names: { 1: 'Liver' },
      path: join(tmp, 'mf.rtstruct.dcm'),
    });

    const image = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_006.nii.gz'));
    const labels = await readNifti(dataPath('msd-hippocampus', 'labels', 'hippocampus_006.nii.gz'));
    for (const [name, rot] of [
      ['MR axial', undefined],
      ['MR oblique', rotation(25, -12)],
    ] as const) {
      const dir = join(tmp, name.replace(' ', '-'));
      const stored = writeSeries(image, dir, { bitsAllocated: 16, bitsStored: 12, seriesUID: rot ? '2.25.8002' : '2.25.8001', rotation: rot });
      const source = await readDicomSeries(dir);
      assert.equal(
        stored.findIndex((v, i) => v !== source.data[i]),
        -1,
        `${name} reads back in the NIfTI voxel order`,
      );
      cases.push({
        name,
        source,
        sourceFiles: files(dir),
        labels,
        names: { 1: 'Anterior', 2: 'Posterior' },
        path: join(tmp, `${name.replace(' ', '-')}.rtstruct.dcm`),
      });
    }
    for (const c of cases) await writeRtStruct(c.labels, c.source, roisFor(c.names, 'Task04_Hippocampus'), { path: c.path });
    refs = runResultsRef<RefRt>(cases.map((c) => ({ op: 'rtstruct', file: c.path, source: c.sourceFiles })));
  });

  it('every RTSTRUCT passes dciodvfy with no error', () => {
    for (const c of cases) {
      const r = dciodvfy(c.path);
      assert.match(r.iod, /RT ?Structure ?Set/i, r.output);
      assert.deepEqual(r.errors, [], `${c.name}:\n${r.output}`);
    }
  });

  it('pydicom + scikit-image: contours in the referenced image planes, references to the source, Dice >= 0.98 per label', () => {
    cases.forEach((c, k) => {
      const { info, data } = refs[k]!;
      const [nx, ny, nz] = c.source.size;
      const n = nx * ny * nz;
      assert.equal(info.sopClassUID, '1.2.840.10008.5.1.4.1.1.481.3');
      assert.equal(info.modality, 'RTSTRUCT');
      assert.equal(info.frameOfReference, c.source.meta.frameOfReferenceUID);
      assert.equal(info.referencedStudy, c.source.meta.studyInstanceUID);
      assert.equal(info.studyInstanceUID, c.source.meta.studyInstanceUID);
      assert.equal(info.referencedSeries, c.source.meta.seriesInstanceUID);
      assert.deepEqual(info.contourImages, [...new Set(c.source.meta.sopInstanceUIDs)]);
      assert.equal(info.badReferences, 0, `${c.name}: every contour references a source image (and frame)`);
      assert.ok(info.worstPlaneDistance < 1e-3, `${c.name}: contour points ${info.worstPlaneDistance} mm off their image plane`);
      info.rois.forEach((roi, r) => {
        assert.equal(roi.name, c.names[roi.number]);
        assert.equal(roi.generationAlgorithm, 'AUTOMATIC');
        assert.equal(roi.algorithmName, 'test-model (unet)');
        assert.equal(roi.frameOfReference, c.source.meta.frameOfReferenceUID);
        assert.equal(roi.interpretedType, 'ORGAN');
        assert.ok(roi.code, 'RT ROI Identification Code');
        assert.ok(roi.contours > 0);
        const d = dice(c.labels.data, data, roi.number, r * n);
        assert.ok(d >= 0.98, `${c.name} ${roi.name}: Dice ${d}`);
        // Pixel-edge contours: per slice, the signed areas add up to the labelled pixels (to within
        // the 0.1 µm the coordinates are written with: far below the one pixel a wrong contour costs).
        const plane = nx * ny;
        for (let z = 0; z < nz; z++) {
          let pixels = 0;
          for (let i = z * plane; i < (z + 1) * plane; i++) if (c.labels.data[i] === roi.number) pixels++;
          assert.ok(
            Math.abs(Math.abs(roi.signedArea[String(z)] ?? 0) - pixels) < 0.1,
            `${c.name} ${roi.name} slice ${z}: area ${roi.signedArea[String(z)]} vs ${pixels} pixels`,
          );
        }
      });
    });
  });

  it("medseg's reader rasterises each back to the same label map, with names, colours and codes", async () => {
    for (const c of cases) {
      const rt = await readRtStruct(c.path);
      assert.deepEqual(
        rt.rois.map((r) => r.name),
        Object.values(c.names),
      );
      assert.equal(rt.referencedSeriesInstanceUID, c.source.meta.seriesInstanceUID);
      assert.ok(rt.rois.every((r) => r.rgb?.length === 3 && r.algorithmVersion === '9.8.7' && r.code !== undefined));
      if (c.name === 'multi-frame') assert.ok(rt.rois[0]!.contours.every((k) => k.referencedFrameNumber !== undefined));
      const back = rtstructLabelmap(rt, c.source);
      for (const r of rt.rois) {
        const m = rtstructMasks(rt, c.source).masks.get(r.number)!;
        assert.ok(dice(c.labels.data, m.data, r.number) >= 0.98);
      }
      assert.deepEqual(back.data, Uint16Array.from(c.labels.data), c.name);
    }
  });

  it('typed errors: a grid the contours do not lie on, a SEG given as an RTSTRUCT, a source without SOP instances', async () => {
    const c = cases[2]!;
    const rt = await readRtStruct(c.path);
    // Half a slice along the normal: no contour lies in a slice plane of that grid.
    const [d, h] = [c.source.direction, c.source.spacing[2] / 2];
    const o = c.source.origin;
    const shifted: Volume = { ...c.source, origin: [o[0] + h * d[2], o[1] + h * d[5], o[2] + h * d[8]] };
    assert.throws(
      () => rtstructMasks(rt, shifted),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY' && /slice plane/.test(e.message),
    );
    const otherFrame: Volume = { ...c.source, meta: { ...c.source.meta, frameOfReferenceUID: '1.2.3' } };
    assert.throws(
      () => rtstructMasks(rt, otherFrame),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY' && /frame of reference/.test(e.message),
    );
    await assert.rejects(readRtStruct(D('liver.dcm')), (e: unknown) => e instanceof MedsegIoError && e.code === 'UNSUPPORTED');
    const nifti = await readNifti(dataPath('msd-hippocampus', 'labels', 'hippocampus_006.nii.gz'));
    assert.throws(
      () => buildRtStruct(nifti, nifti, roisFor({ 1: 'Anterior' })),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_DATA' && /SOP instance UIDs/.test(e.message),
    );
  });
});
