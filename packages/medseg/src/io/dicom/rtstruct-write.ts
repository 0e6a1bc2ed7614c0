/**
 * RT Structure Set writer: one ROI per label, its contours traced slice by
 * slice in the source image planes (contours.ts: pixel-edge boundaries, so
 * the contours enclose exactly the labelled voxels; holes and separate
 * components are contours of their own, combined by the even-odd / XOR rule
 * RTSTRUCT readers use). Contours are CLOSED_PLANAR, points in patient
 * coordinates (mm) from the source geometry, each referencing the source
 * instance (and frame, for a multi-frame source) it lies on.
 *
 * Modules: Patient, General Study (copied from the source), RT Series,
 * Frame of Reference (the source's), General Equipment, Structure Set (Referenced Frame of Reference Sequence
 * down to every source instance, Structure Set ROI Sequence with the
 * generation algorithm and its identification), ROI Contour, RT ROI
 * Observations (with the ROI's code), SOP Common. Optional de-identification
 * of what is written.
 */
import { MedsegIoError } from '../errors.ts';
import { voxelCount, type Volume, type VoxelArray } from '../volume.ts';
import { traceSlice, type Polygon } from './contours.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';
import { deidentifyDataset, type DeidentifyOptions } from './deidentify.ts';
import { R, RTSTRUCT_SOP_CLASS, STUDY_REFERENCE_SOP_CLASS } from './result-tags.ts';
import type { Code } from './seg-read.ts';
import {
  AI_ALGORITHM_FAMILY,
  DEFAULT_COLOURS,
  algorithmIdentification,
  codeItem,
  distinctInstances,
  equipmentElements,
  sourceFrameNumbers,
  sourceFrameOfReference,
  sourceSopClass,
  sourceStudyUid,
  studyElements,
  text,
} from './result-elements.ts';
import { newUid } from './uid.ts';
import { dataset, el, formatDS, writeDicom } from './write.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';

export interface RoiDescription {
  /** ROI number; for a label map, the label value. */
  number: number;
  name: string;
  description?: string;
  /** sRGB 0..255 (ROI Display Color). */
  rgb?: [number, number, number];
  /** Coded identity (RT ROI Identification Code Sequence), e.g. the SEG type code. */
  code?: Code;
  /** RT ROI Interpreted Type (ORGAN, GTV, ...); empty (unknown) when not given. */
  interpretedType?: string;
  algorithmType?: 'AUTOMATIC' | 'SEMIAUTOMATIC' | 'MANUAL';
  algorithmName?: string;
  algorithmVersion?: string;
}

export interface RtStructWriteOptions {
  structureSetLabel?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  manufacturer?: string;
  softwareVersions?: string;
  /**
   * De-identify the written object (same options as deidentify). With the
   * `state` (or `uidSecret`) that de-identified the source series, every UID
   * the structure set references (study, series, instances, frame of
   * reference) becomes the source's new UID.
   */
  deidentify?: boolean | DeidentifyOptions;
  /** Also write the bytes to this path (atomically). */
  path?: string;
}

/** The largest value a DS element holds in Explicit VR (16-bit length). */
const MAX_DS_BYTES = 0xfffe;

type Masks = Volume | Map<number, Volume | VoxelArray>;

/** Contour points as DS text: 0.1 µm resolution, far below any pixel; coarser only when a huge contour would not fit. */
function contourData(points: number[]): string {
  for (const digits of [4, 3, 2]) {
    const s = points.map((x) => formatDS(Number(x.toFixed(digits)))).join('\\');
    if (s.length <= MAX_DS_BYTES) return s;
  }
  throw new MedsegIoError('UNSUPPORTED', `a contour of ${points.length / 3} points does not fit one ContourData element`);
}

/** Builds the RT Structure Set dataset; writeRtStruct serializes it. */
export function buildRtStruct(masks: Masks, source: Volume, rois: RoiDescription[], opts: RtStructWriteOptions = {}): DicomDataset {
  const [nx, ny, nz] = source.size;
  const plane = nx * ny;
  const n = voxelCount(source);
  const sops = source.meta.sopInstanceUIDs;
  if (!sops || sops.length !== nz) {
    throw new MedsegIoError('BAD_DATA', 'source volume has no SOP instance UIDs per slice (read it with readDicomSeries)');
  }
  if (!rois.length) throw new MedsegIoError('BAD_DATA', 'no ROIs to write');
  const insideOf = new Map<number, (i: number) => boolean>();
  for (const r of rois) {
    if (!Number.isInteger(r.number) || r.number < 1 || insideOf.has(r.number)) throw new MedsegIoError('BAD_DATA', `bad or duplicate ROI number ${r.number}`);
    if (masks instanceof Map) {
      const m = masks.get(r.number);
      if (!m) throw new MedsegIoError('BAD_DATA', `no mask for ROI ${r.number}`);
      const arr: ArrayLike<number> = 'data' in m ? m.data : m;
      if (arr.length !== n) throw new MedsegIoError('BAD_GEOMETRY', `mask of ROI ${r.number} has ${arr.length} voxels, source has ${n}`);
      insideOf.set(r.number, (i) => arr[i]! >= 0.5);
    } else {
      const arr = masks.data;
      if (arr.length !== n || masks.channels !== 1) throw new MedsegIoError('BAD_GEOMETRY', `label map has ${arr.length} voxels, source has ${n}`);
      const v = r.number;
      insideOf.set(v, (i) => arr[i] === v);
    }
  }

  const sopClass = sourceSopClass(source);
  const frameNumbers = sourceFrameNumbers(source);
  const frameOfReference = sourceFrameOfReference(source);
  if (!frameOfReference) throw new MedsegIoError('BAD_DATA', 'source volume has no FrameOfReferenceUID: an RTSTRUCT places its contours in it');
  const studyUid = sourceStudyUid(source);
  if (!studyUid) throw new MedsegIoError('BAD_DATA', 'source volume has no StudyInstanceUID');
  const seriesUidOfSource = source.meta.seriesInstanceUID;
  if (!seriesUidOfSource) throw new MedsegIoError('BAD_DATA', 'source volume has no SeriesInstanceUID');

  const d = source.direction;
  const [sx, sy, sz] = source.spacing;
  const o = source.origin;
  /** Pixel index coordinates on slice z -> patient coordinates (mm). */
  const toPatient = (poly: Polygon, z: number): number[] => {
    const pts: number[] = [];
    for (let k = 0; k < poly.length; k += 2) {
      const fx = poly[k]! * sx;
      const fy = poly[k + 1]! * sy;
      const fz = z * sz;
      for (let a = 0; a < 3; a++) pts.push(o[a]! + fx * d[3 * a]! + fy * d[3 * a + 1]! + fz * d[3 * a + 2]!);
    }
    return pts;
  };
  const imageRef = (z: number) =>
    dataset(
      el.str(T.ReferencedSOPClassUID, 'UI', sopClass),
      el.str(T.ReferencedSOPInstanceUID, 'UI', sops[z]!),
      frameNumbers ? el.nums(T.ReferencedFrameNumber, 'IS', [frameNumbers[z]!]) : undefined,
    );

  const now = new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const softwareVersions = opts.softwareVersions ?? '0.1.0';

  const roiItems: DicomDataset[] = [];
  const contourItems: DicomDataset[] = [];
  const observationItems: DicomDataset[] = [];
  rois.forEach((r, idx) => {
    const inside = insideOf.get(r.number)!;
    const contours: DicomDataset[] = [];
    for (let z = 0; z < nz; z++) {
      const off = z * plane;
      let any = false;
      for (let i = off; !any && i < off + plane; i++) any = inside(i);
      if (!any) continue;
      for (const poly of traceSlice((i) => inside(off + i), nx, ny)) {
        const pts = toPatient(poly, z);
        contours.push(
          dataset(
            el.seq(R.ContourImageSequence, [imageRef(z)]),
            el.str(R.ContourGeometricType, 'CS', 'CLOSED_PLANAR'),
            el.nums(R.NumberOfContourPoints, 'IS', [pts.length / 3]),
            el.nums(R.ContourNumber, 'IS', [contours.length + 1]),
            el.str(R.ContourData, 'DS', contourData(pts)),
          ),
        );
      }
    }
    const algType = r.algorithmType ?? (r.algorithmName ? 'AUTOMATIC' : 'MANUAL');
    const algName = r.algorithmName ?? 'medseg';
    roiItems.push(
      dataset(
        el.nums(R.ROINumber, 'IS', [r.number]),
        el.str(R.ReferencedFrameOfReferenceUID, 'UI', frameOfReference),
        text(R.ROIName, 'LO', r.name.slice(0, 64)),
        r.description ? text(R.ROIDescription, 'ST', r.description) : undefined,
        el.str(R.ROIGenerationAlgorithm, 'CS', algType),
        algType !== 'MANUAL' ? text(R.ROIGenerationDescription, 'LO', `${algName} ${softwareVersions}`.slice(0, 64)) : undefined,
        algType !== 'MANUAL'
          ? el.seq(R.ROIDerivationAlgorithmIdentificationSequence, [
              algorithmIdentification(AI_ALGORITHM_FAMILY, algName, r.algorithmVersion ?? softwareVersions),
            ])
          : undefined,
      ),
    );
    contourItems.push(
      dataset(
        el.nums(R.ROIDisplayColor, 'IS', r.rgb ?? DEFAULT_COLOURS[idx % DEFAULT_COLOURS.length]!),
        contours.length ? el.seq(R.ContourSequence, contours) : undefined,
        el.nums(R.ReferencedROINumber, 'IS', [r.number]),
      ),
    );
    observationItems.push(
      dataset(
        el.nums(R.ObservationNumber, 'IS', [r.number]),
        el.nums(R.ReferencedROINumber, 'IS', [r.number]),
        text(R.ROIObservationLabel, 'SH', r.name.slice(0, 16)),
        r.code ? el.seq(R.RTROIIdentificationCodeSequence, [codeItem(r.code)]) : undefined,
        el.str(R.RTROIInterpretedType, 'CS', r.interpretedType ?? ''),
        el.str(R.ROIInterpreter, 'PN', ''),
      ),
    );
  });

  const ds = dataset(
    el.str(T.SpecificCharacterSet, 'CS', 'ISO_IR 192'),
    el.str(R.InstanceCreationDate, 'DA', date),
    el.str(R.InstanceCreationTime, 'TM', time),
    el.str(T.SOPClassUID, 'UI', RTSTRUCT_SOP_CLASS),
    el.str(T.SOPInstanceUID, 'UI', newUid()),
    el.str(T.SeriesDate, 'DA', date),
    el.str(T.SeriesTime, 'TM', time),
    el.str(T.Modality, 'CS', 'RTSTRUCT'),
    ...studyElements(source),
    ...equipmentElements({ manufacturer: opts.manufacturer, softwareVersions }),
    text(T.SeriesDescription, 'LO', opts.seriesDescription ?? 'Structure set'),
    el.str(R.OperatorsName, 'PN', ''),
    el.str(T.SeriesInstanceUID, 'UI', newUid()),
    el.nums(T.SeriesNumber, 'IS', [opts.seriesNumber ?? 301]),
    el.nums(T.InstanceNumber, 'IS', [1]),
    el.str(T.FrameOfReferenceUID, 'UI', frameOfReference),
    el.str(T.PositionReferenceIndicator, 'LO', ''),
    text(R.StructureSetLabel, 'SH', (opts.structureSetLabel ?? 'medseg').slice(0, 16)),
    el.str(R.StructureSetDate, 'DA', date),
    el.str(R.StructureSetTime, 'TM', time),
    el.seq(R.ReferencedFrameOfReferenceSequence, [
      dataset(
        el.str(T.FrameOfReferenceUID, 'UI', frameOfReference),
        el.seq(R.RTReferencedStudySequence, [
          dataset(
            el.str(T.ReferencedSOPClassUID, 'UI', STUDY_REFERENCE_SOP_CLASS),
            el.str(T.ReferencedSOPInstanceUID, 'UI', studyUid),
            el.seq(R.RTReferencedSeriesSequence, [
              dataset(
                el.str(T.SeriesInstanceUID, 'UI', seriesUidOfSource),
                el.seq(
                  R.ContourImageSequence,
                  distinctInstances(sops).map((u) => dataset(el.str(T.ReferencedSOPClassUID, 'UI', sopClass), el.str(T.ReferencedSOPInstanceUID, 'UI', u))),
                ),
              ),
            ]),
          ),
        ]),
      ),
    ]),
    el.seq(R.StructureSetROISequence, roiItems),
    el.seq(R.ROIContourSequence, contourItems),
    el.seq(R.RTROIObservationsSequence, observationItems),
  );
  ds.utf8 = true;
  if (opts.deidentify) deidentifyDataset(ds, opts.deidentify === true ? {} : opts.deidentify);
  return ds;
}

/** Writes an RT Structure Set (Part 10 bytes; also to opts.path when given, atomically). */
export async function writeRtStruct(masks: Masks, source: Volume, rois: RoiDescription[], opts: RtStructWriteOptions = {}): Promise<Uint8Array> {
  const bytes = writeDicom(buildRtStruct(masks, source, rois, opts));
  if (opts.path) await writeFileAtomic(opts.path, bytes);
  return bytes;
}
