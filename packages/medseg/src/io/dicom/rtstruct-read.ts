/**
 * RT Structure Set reader and rasteriser: the ROIs with their names, colours,
 * codes and contours, and masks / a label map on a grid (the referenced
 * series' Volume).
 *
 * Rasterising: each CLOSED_PLANAR contour is mapped into the grid's index
 * coordinates; it must lie in one slice plane (within a tenth of the slice
 * spacing). A voxel is inside an ROI when its centre is inside an odd number
 * of the ROI's contours on that slice (even-odd: holes and nested islands
 * are contours of their own, XOR-combined, as planning systems read them).
 * POINT and OPEN contours enclose nothing and are counted as skipped.
 */
import { readFile } from 'node:fs/promises';
import { MedsegIoError, type ReadLimits } from '../errors.ts';
import { checkAllocation, fsError, resolveLimits } from '../limits.ts';
import type { Vec3, Volume, VolumeMeta } from '../volume.ts';
import { fillPolygons, type Polygon } from './contours.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';
import { parseDicom } from './parse.ts';
import { dot } from './planes.ts';
import { R, RTSTRUCT_SOP_CLASS } from './result-tags.ts';
import { code, type Code } from './seg-read.ts';

export interface RtContour {
  geometricType: string;
  /** x, y, z in patient coordinates (mm), point after point. */
  points: Float64Array;
  referencedSopInstanceUID?: string;
  referencedFrameNumber?: number;
}

export interface RtRoi {
  number: number;
  name: string;
  description?: string;
  frameOfReferenceUID?: string;
  generationAlgorithm?: string;
  algorithmName?: string;
  algorithmVersion?: string;
  rgb?: [number, number, number];
  interpretedType?: string;
  code?: Code;
  contours: RtContour[];
}

export interface RtStructureSet {
  label?: string;
  rois: RtRoi[];
  /** Series the structure set's contours were drawn on (first of the Referenced Frame of Reference Sequence). */
  referencedSeriesInstanceUID?: string;
  meta: VolumeMeta;
}

export interface RtStructReadOptions {
  limits?: Partial<ReadLimits>;
}

export async function readRtStruct(path: string, opts: RtStructReadOptions = {}): Promise<RtStructureSet> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  return parseRtStruct(buf, { ...opts, path });
}

export function parseRtStruct(buf: Uint8Array, opts: RtStructReadOptions & { path?: string } = {}): RtStructureSet {
  const path = opts.path;
  const file = parseDicom(buf, { path, limits: resolveLimits(opts.limits) });
  const ds = file.dataset;
  const sopClass = ds.string(T.SOPClassUID);
  if (sopClass !== RTSTRUCT_SOP_CLASS && ds.string(T.Modality) !== 'RTSTRUCT') {
    throw new MedsegIoError('UNSUPPORTED', `not an RT Structure Set (SOP class ${sopClass ?? 'none'})`, path);
  }
  const rois = new Map<number, RtRoi>();
  for (const item of ds.seq(R.StructureSetROISequence)) {
    const number = item.number(R.ROINumber);
    if (number === undefined || !Number.isInteger(number) || rois.has(number))
      throw new MedsegIoError('BAD_DATA', `bad or duplicate ROI Number ${number}`, path);
    const alg = item.item(R.ROIDerivationAlgorithmIdentificationSequence);
    rois.set(number, {
      number,
      name: item.string(R.ROIName) ?? '',
      description: item.string(R.ROIDescription),
      frameOfReferenceUID: item.string(R.ReferencedFrameOfReferenceUID),
      generationAlgorithm: item.string(R.ROIGenerationAlgorithm),
      algorithmName: alg?.string(R.AlgorithmName),
      algorithmVersion: alg?.string(R.AlgorithmVersion),
      contours: [],
    });
  }
  for (const item of ds.seq(R.ROIContourSequence)) {
    const number = item.number(R.ReferencedROINumber);
    const roi = number === undefined ? undefined : rois.get(number);
    if (!roi) throw new MedsegIoError('BAD_DATA', `ROI Contour Sequence references ROI ${number ?? '(none)'} not in the Structure Set ROI Sequence`, path);
    const colour = item.numbers(R.ROIDisplayColor);
    if (colour.length === 3 && colour.every((c) => Number.isFinite(c))) roi.rgb = colour as [number, number, number];
    item.seq(R.ContourSequence).forEach((c, k) => roi.contours.push(readContour(c, `ROI ${number} contour ${k + 1}`, path)));
  }
  for (const item of ds.seq(R.RTROIObservationsSequence)) {
    const roi = rois.get(item.number(R.ReferencedROINumber) ?? NaN);
    if (!roi) continue;
    roi.interpretedType = item.string(R.RTROIInterpretedType);
    roi.code = code(item.item(R.RTROIIdentificationCodeSequence));
  }
  const series = ds.item(R.ReferencedFrameOfReferenceSequence)?.item(R.RTReferencedStudySequence)?.item(R.RTReferencedSeriesSequence);
  return {
    label: ds.string(R.StructureSetLabel),
    rois: [...rois.values()],
    referencedSeriesInstanceUID: series?.string(T.SeriesInstanceUID),
    meta: {
      modality: 'RTSTRUCT',
      patientId: ds.string(T.PatientID),
      patientName: ds.string(T.PatientName),
      studyInstanceUID: ds.string(T.StudyInstanceUID),
      seriesInstanceUID: ds.string(T.SeriesInstanceUID),
      frameOfReferenceUID: ds.item(R.ReferencedFrameOfReferenceSequence)?.string(T.FrameOfReferenceUID),
      sopClassUID: sopClass,
      seriesDescription: ds.string(T.SeriesDescription),
      sourcePath: path,
      extra: { sopInstanceUID: ds.string(T.SOPInstanceUID) },
    },
  };
}

function readContour(c: DicomDataset, where: string, path?: string): RtContour {
  const values = c.numbers(R.ContourData);
  if (values.length % 3 !== 0 || !values.every(Number.isFinite))
    throw new MedsegIoError('BAD_DATA', `${where}: ContourData is not a list of x, y, z numbers`, path);
  const declared = c.number(R.NumberOfContourPoints);
  if (declared !== undefined && declared !== values.length / 3) {
    throw new MedsegIoError('BAD_DATA', `${where}: NumberOfContourPoints ${declared} but ${values.length / 3} points`, path);
  }
  const img = c.item(R.ContourImageSequence);
  return {
    geometricType: (c.string(R.ContourGeometricType) ?? '').toUpperCase(),
    points: Float64Array.from(values),
    referencedSopInstanceUID: img?.string(T.ReferencedSOPInstanceUID),
    referencedFrameNumber: img?.number(T.ReferencedFrameNumber),
  };
}

export interface RasterisedRois {
  masks: Map<number, Volume>;
  /** Contours that enclose nothing (POINT, OPEN_PLANAR, OPEN_NONPLANAR) and were left out. */
  skippedContours: number;
}

/** One mask (uint8 0/1) per ROI on the grid. */
export function rtstructMasks(rt: RtStructureSet, grid: Volume, opts: { limits?: Partial<ReadLimits> } = {}): RasterisedRois {
  const path = rt.meta.sourcePath;
  const [nx, ny, nz] = grid.size;
  const plane = nx * ny;
  checkAllocation(plane * nz * Math.max(1, rt.rois.length), 1, resolveLimits(opts.limits), path);
  const gridFor = grid.meta.frameOfReferenceUID;
  const d = grid.direction;
  const axes = [0, 1, 2].map((j) => [d[j]!, d[3 + j]!, d[6 + j]!] as Vec3);
  const masks = new Map<number, Volume>();
  let skippedContours = 0;
  for (const roi of rt.rois) {
    if (gridFor && roi.frameOfReferenceUID && roi.frameOfReferenceUID !== gridFor) {
      throw new MedsegIoError('BAD_GEOMETRY', `ROI ${roi.number} is in frame of reference ${roi.frameOfReferenceUID}, the grid in ${gridFor}`, path);
    }
    const data = new Uint8Array(plane * nz);
    const bySlice = new Map<number, Polygon[]>();
    roi.contours.forEach((c, k) => {
      if (!c.geometricType.startsWith('CLOSED')) {
        skippedContours++;
        return;
      }
      const m = c.points.length / 3;
      if (m < 3) return; // encloses nothing
      const poly: Polygon = [];
      let z: number | undefined;
      for (let p = 0; p < m; p++) {
        const rel = [0, 1, 2].map((a) => c.points[3 * p + a]! - grid.origin[a]!);
        const ijk = axes.map((ax, j) => dot(rel, ax) / grid.spacing[j]!);
        const zi = Math.round(ijk[2]!);
        if (Math.abs(ijk[2]! - zi) > 0.1 || (z !== undefined && zi !== z)) {
          throw new MedsegIoError('BAD_GEOMETRY', `ROI ${roi.number} contour ${k + 1} does not lie in a slice plane of the grid`, path);
        }
        z = zi;
        poly.push(ijk[0]!, ijk[1]!);
      }
      if (z! < 0 || z! >= nz) throw new MedsegIoError('BAD_GEOMETRY', `ROI ${roi.number} contour ${k + 1} lies outside the grid (slice ${z})`, path);
      const list = bySlice.get(z!);
      if (list) list.push(poly);
      else bySlice.set(z!, [poly]);
    });
    for (const [z, polys] of bySlice) fillPolygons(polys, nx, ny, data.subarray(z * plane, (z + 1) * plane));
    masks.set(roi.number, {
      data,
      size: [nx, ny, nz],
      channels: 1,
      spacing: [...grid.spacing],
      origin: [...grid.origin],
      direction: [...grid.direction],
      meta: { ...rt.meta, extra: { ...rt.meta.extra, roi: { number: roi.number, name: roi.name } } },
    });
  }
  return { masks, skippedContours };
}

/**
 * A label map (uint16 ROI numbers) on the grid. Overlapping ROIs make a
 * label map lossy: by default that is an error (BAD_DATA); with onOverlap
 * 'last' the later ROI wins.
 */
export function rtstructLabelmap(rt: RtStructureSet, grid: Volume, opts: { onOverlap?: 'error' | 'last'; limits?: Partial<ReadLimits> } = {}): Volume {
  const { masks } = rtstructMasks(rt, grid, opts);
  const n = grid.size[0] * grid.size[1] * grid.size[2];
  const data = new Uint16Array(n);
  let overlap = 0;
  for (const [number, m] of masks) {
    for (let i = 0; i < n; i++) {
      if (!m.data[i]) continue;
      if (data[i]) overlap++;
      data[i] = number;
    }
  }
  if (overlap && opts.onOverlap !== 'last') {
    throw new MedsegIoError('BAD_DATA', `ROIs overlap in ${overlap} voxels: use rtstructMasks, or onOverlap 'last'`, rt.meta.sourcePath);
  }
  return {
    data,
    size: [...grid.size],
    channels: 1,
    spacing: [...grid.spacing],
    origin: [...grid.origin],
    direction: [...grid.direction],
    meta: { ...rt.meta },
  };
}
