/**
 * Conformance of the DICOM SEGs medseg writes, on real data: the shared CT
 * series (liver + spine label map from dcmqi), its enhanced multi-frame copy
 * (frame references), and a hippocampus MR series our writer makes from the
 * shared MSD volume (BINARY with anatomy codes and a UTF-8 label, FRACTIONAL
 * probabilities). Each SEG must pass dicom3tools' dciodvfy with no error,
 * read back with pydicom (segments, codes, algorithm identification, each
 * frame's source reference pointing at the source frame at the same plane
 * position, pixels), and re-import through medseg's reader to the same label
 * map / the same quantised probabilities.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { dciodvfy, skipWithoutDciodvfy } from '../../testing/dciodvfy.ts';
import { writeSeries } from '../../testing/dicom-compressed.ts';
import { runResultsRef } from '../../testing/results-ref.ts';
import { readNifti } from '../nifti.ts';
import { readVolume } from '../read.ts';
import type { Volume } from '../volume.ts';
import { readDicomSeg, segLabelmap, segMasks } from './seg-read.ts';
import { writeDicomSeg, type SegmentDescription } from './seg-write.ts';
import { defaultSegmentCodes } from './segment-codes.ts';
import { readDicomSeries } from './series.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const tmp = mkdtempSync(join(tmpdir(), 'medseg-segconf-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const skip = skipWithoutDciodvfy();

interface Code {
  value: string;
  scheme: string;
  meaning: string;
}
interface RefSeg {
  sopClassUID: string;
  segmentationType: string;
  fractionalType: string;
  maxFractional: number | null;
  numberOfFrames: number;
  charset: string;
  segments: {
    number: number;
    label: string;
    algorithmType: string;
    algorithmName: string;
    category: Code;
    type: Code;
    modifier: Code | null;
    family: Code | null;
    algorithmVersion: string | null;
  }[];
  frames: {
    ref: string;
    refFrame: number | null;
    refClass: string;
    segment: number;
    position: number[];
    sliceOfReference: number | null;
    sliceOfPosition: number | null;
  }[];
  referencedInstances: string[];
}

const files = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .map((f) => join(dir, f));

function segmentsFor(names: Record<number, string>, context?: string): SegmentDescription[] {
  return Object.entries(names).map(([k, name]) => {
    const c = defaultSegmentCodes(name, context);
    return {
      number: Number(k),
      label: name,
      category: c.category,
      type: c.type,
      typeModifier: c.modifier,
      algorithmType: 'AUTOMATIC' as const,
      algorithmName: 'test-model (unet)',
      algorithmVersion: '9.8.7',
    };
  });
}

/** Non-empty (segment, slice) pairs of a label map: the frames a SEG without empty frames holds. */
function nonEmptyFrames(labels: ArrayLike<number>, plane: number, nz: number, segs: number[]): Set<string> {
  const out = new Set<string>();
  for (const s of segs)
    for (let z = 0; z < nz; z++) {
      for (let i = z * plane; i < (z + 1) * plane; i++)
        if (labels[i] === s) {
          out.add(`${s}@${z}`);
          break;
        }
    }
  return out;
}

function assertValid(path: string): void {
  const r = dciodvfy(path);
  assert.equal(r.iod, 'Segmentation', r.output);
  assert.deepEqual(r.errors, [], r.output);
}

/** pydicom's view: frames reference the source frame at their own position, pixels are the label map's. */
function assertFramesAndPixels(ref: RefSeg, px: Float32Array, labels: ArrayLike<number>, source: Volume, frameNumbers: boolean): void {
  const [nx, ny, nz] = source.size;
  const plane = nx * ny;
  const expected = nonEmptyFrames(
    labels,
    plane,
    nz,
    ref.segments.map((s) => s.number),
  );
  assert.equal(ref.numberOfFrames, expected.size, 'one frame per non-empty (segment, slice)');
  const seen = new Set<string>();
  ref.frames.forEach((f, k) => {
    assert.notEqual(f.sliceOfPosition, null, `frame ${k + 1}: a source frame sits at its plane position`);
    assert.equal(f.sliceOfReference, f.sliceOfPosition, `frame ${k + 1} references the source frame at its position`);
    assert.equal(f.refFrame !== null, frameNumbers, `frame ${k + 1} ReferencedFrameNumber`);
    const z = f.sliceOfPosition!;
    seen.add(`${f.segment}@${z}`);
    for (let i = 0; i < plane; i++) {
      if (px[k * plane + i] !== (labels[z * plane + i] === f.segment ? 1 : 0)) assert.fail(`frame ${k + 1} pixel ${i}`);
    }
  });
  assert.deepEqual([...seen].sort(), [...expected].sort());
}

describe('DICOM SEG conformance', { skip }, () => {
  let ct: Volume;
  let ctLabels: Volume;
  let mf: Volume;
  let mfLabels: Volume;
  let mr: Volume;
  let mrLabels: Volume;
  const MR = join(tmp, 'mr');
  const paths = {
    ct: join(tmp, 'ct.seg.dcm'),
    mf: join(tmp, 'mf.seg.dcm'),
    mr: join(tmp, 'mr.seg.dcm'),
    mrAll: join(tmp, 'mr-all.seg.dcm'),
    frac: join(tmp, 'mr-prob.seg.dcm'),
  };
  let refs: { info: RefSeg; data: Float32Array }[];
  const probabilities = new Map<number, Float32Array>();

  before(async () => {
    ct = await readDicomSeries(D('ct-3slice'));
    ctLabels = await readVolume(D('liver_spine_seg.nrrd'));
    assert.deepEqual(ctLabels.size, ct.size);
    mf = await readDicomSeries(D('23x38x3/multiframe/mf.dcm'));
    const img23 = await readDicomSeries(D('23x38x3/image'));
    // dcmqi's SEG of the single-frame series, placed on the multi-frame copy's grid by plane position.
    mfLabels = segLabelmap(await readDicomSeg(D('23x38x3/seg/label.seg'), { source: img23 }), mf).labelmap;
    assert.ok(mfLabels.data.some((v) => v !== 0));

    const image = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_003.nii.gz'));
    mrLabels = await readNifti(dataPath('msd-hippocampus', 'labels', 'hippocampus_003.nii.gz'));
    const stored = writeSeries(image, MR, { bitsAllocated: 16, bitsStored: 12, seriesUID: '2.25.7001' });
    mr = await readDicomSeries(MR);
    assert.equal(
      stored.findIndex((v, i) => v !== mr.data[i]),
      -1,
      'the MR series reads back in the NIfTI voxel order',
    );

    await writeDicomSeg(ctLabels, ct, segmentsFor({ 1: 'Liver', 2: 'Spine' }), { path: paths.ct });
    await writeDicomSeg(mfLabels, mf, segmentsFor({ 1: 'Liver' }), { path: paths.mf });
    const hippo = segmentsFor({ 1: 'Anterior', 2: 'Posterior' }, 'Task04_Hippocampus');
    hippo[1]!.label = 'Ammon’s horn – posterior';
    await writeDicomSeg(mrLabels, mr, hippo, { path: paths.mr });
    await writeDicomSeg(mrLabels, mr, hippo, { path: paths.mrAll, allFrames: true });
    // Probabilities from the label map: each class's one-hot averaged over the 3x3x3 neighbourhood (values k/27).
    const [nx, ny, nz] = mr.size;
    for (const c of [1, 2]) {
      const p = new Float32Array(nx * ny * nz);
      for (let z = 0; z < nz; z++)
        for (let y = 0; y < ny; y++)
          for (let x = 0; x < nx; x++) {
            let n = 0;
            for (let dz = -1; dz <= 1; dz++)
              for (let dy = -1; dy <= 1; dy++)
                for (let dx = -1; dx <= 1; dx++) {
                  const [a, b, e] = [x + dx, y + dy, z + dz];
                  if (a >= 0 && b >= 0 && e >= 0 && a < nx && b < ny && e < nz && mrLabels.data[a + nx * (b + ny * e)] === c) n++;
                }
            p[x + nx * (y + ny * z)] = n / 27;
          }
      probabilities.set(c, p);
    }
    await writeDicomSeg(probabilities, mr, hippo, { path: paths.frac, fractional: 'PROBABILITY' });

    refs = runResultsRef<RefSeg>([
      { op: 'seg', file: paths.ct, source: files(D('ct-3slice')) },
      { op: 'seg', file: paths.mf, source: [D('23x38x3/multiframe/mf.dcm')] },
      { op: 'seg', file: paths.mr, source: files(MR) },
      { op: 'seg', file: paths.mrAll, source: files(MR) },
      { op: 'seg', file: paths.frac, source: files(MR) },
    ]);
  });

  it('every SEG passes dciodvfy with no error', () => {
    for (const p of Object.values(paths)) assertValid(p);
  });

  it('CT: pydicom sees the segments, their codes, the algorithm, and one frame per non-empty slice at its source slice', () => {
    const { info, data } = refs[0]!;
    assert.equal(info.sopClassUID, '1.2.840.10008.5.1.4.1.1.66.4');
    assert.equal(info.segmentationType, 'BINARY');
    const [liver, spine] = info.segments;
    assert.deepEqual([liver!.label, liver!.type.value, liver!.category.value], ['Liver', '10200004', '91723000']);
    assert.deepEqual([spine!.label, spine!.type.value], ['Spine', '51282000']);
    for (const s of info.segments) {
      assert.deepEqual([s.algorithmType, s.algorithmName, s.algorithmVersion], ['AUTOMATIC', 'test-model (unet)', '9.8.7']);
      assert.deepEqual(s.family, { value: '123110', scheme: 'DCM', meaning: 'Artificial Intelligence' });
    }
    assert.deepEqual(info.referencedInstances, ct.meta.sopInstanceUIDs);
    assertFramesAndPixels(info, data, ctLabels.data, ct, false);
  });

  it('CT: re-imports to the same label map', async () => {
    const back = await readDicomSeg(paths.ct, { source: ct });
    assert.deepEqual(segLabelmap(back, ct).labelmap.data, Uint16Array.from(ctLabels.data));
    assert.equal(back.segments[0]!.algorithmVersion, '9.8.7');
    assert.equal(back.segments[0]!.algorithmFamily?.value, '123110');
  });

  it('enhanced multi-frame source: each frame names the source instance once and the exact frame number', async () => {
    const { info, data } = refs[1]!;
    assert.equal(info.referencedInstances.length, 1, 'one instance, listed once');
    assert.deepEqual(info.referencedInstances, [mf.meta.sopInstanceUIDs![0]]);
    assert.ok(info.frames.every((f) => f.refClass === mf.meta.sopClassUID));
    assertFramesAndPixels(info, data, mfLabels.data, mf, true);
    const back = await readDicomSeg(paths.mf, { source: mf });
    assert.deepEqual(
      back.frames.map((f) => f.referencedFrameNumber),
      info.frames.map((f) => f.refFrame),
    );
    assert.deepEqual(segLabelmap(back, mf).labelmap.data, Uint16Array.from(mfLabels.data));
  });

  it('hippocampus MR: anatomy codes with modifiers, a UTF-8 label, empty frames left out (or all kept), re-imported identical', async () => {
    const { info, data } = refs[2]!;
    assert.equal(info.charset, 'ISO_IR 192');
    const [a, p] = info.segments;
    assert.deepEqual([a!.type.value, a!.modifier?.value, a!.label], ['5366008', '255549009', 'Anterior']);
    assert.deepEqual([p!.type.value, p!.modifier?.value, p!.label], ['5366008', '255551008', 'Ammon’s horn – posterior']);
    assertFramesAndPixels(info, data, mrLabels.data, mr, false);
    assert.ok(info.numberOfFrames < 2 * mr.size[2], 'some slices hold no hippocampus and have no frame');
    assert.equal(refs[3]!.info.numberOfFrames, 2 * mr.size[2]);
    for (const file of [paths.mr, paths.mrAll]) {
      const back = await readDicomSeg(file, { source: mr });
      assert.deepEqual(segLabelmap(back, mr).labelmap.data, Uint16Array.from(mrLabels.data), file);
      assert.equal(back.segments[1]!.label, 'Ammon’s horn – posterior');
      assert.equal(back.segments[1]!.typeModifier?.meaning, 'Posterior');
    }
  });

  it('FRACTIONAL: probabilities stored as round(p * 255) of MaximumFractionalValue 255, read back by pydicom and medseg', async () => {
    const { info, data } = refs[4]!;
    assert.deepEqual([info.segmentationType, info.fractionalType, info.maxFractional], ['FRACTIONAL', 'PROBABILITY', 255]);
    const [nx, ny, nz] = mr.size;
    const plane = nx * ny;
    let frames = 0;
    for (const c of [1, 2])
      for (let z = 0; z < nz; z++)
        if (
          probabilities
            .get(c)!
            .subarray(z * plane, (z + 1) * plane)
            .some((v) => Math.round(v * 255) > 0)
        )
          frames++;
    assert.equal(info.numberOfFrames, frames, 'frames whose quantised probabilities are all 0 are left out');
    info.frames.forEach((f, k) => {
      const p = probabilities.get(f.segment)!;
      const z = f.sliceOfPosition!;
      assert.equal(f.sliceOfReference, z);
      for (let i = 0; i < plane; i++) if (data[k * plane + i] !== Math.round(p[z * plane + i]! * 255)) assert.fail(`frame ${k + 1} pixel ${i}`);
    });
    const back = segMasks(await readDicomSeg(paths.frac), mr);
    for (const c of [1, 2]) {
      const m = back.get(c)!.data;
      const p = probabilities.get(c)!;
      for (let i = 0; i < p.length; i++) if (Math.abs(m[i]! - Math.round(p[i]! * 255) / 255) > 1e-6) assert.fail(`class ${c} voxel ${i}: ${m[i]} vs ${p[i]}`);
    }
  });
});
