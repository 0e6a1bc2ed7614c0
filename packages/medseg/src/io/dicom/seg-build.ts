/**
 * DICOM SEG builder: Segmentation Storage, BINARY (bit-packed continuously:
 * frames are not padded to a byte boundary, as the standard requires) or
 * FRACTIONAL (8-bit, MaximumFractionalValue 255, PROBABILITY or OCCUPANCY).
 *
 * One frame per (segment, slice). Empty frames are left out unless
 * allFrames: dcmqi (itkimage2segimage skips empty slices by default) and
 * highdicom (omit_empty_frames defaults to true) do the same, since viewers
 * place every frame by its source reference and plane position, so a
 * missing frame reads as empty, and a many-segment SEG stays small. A SEG
 * with no voxel at all keeps one empty frame (a SEG must hold a frame).
 * Every segment is still listed, so the model's classes are all described.
 *
 * Each frame's functional groups reference the exact source: SOP Class and
 * Instance UID of its slice, plus ReferencedFrameNumber when the source is a
 * multi-frame object (readDicomSeries keeps frame numbers in
 * meta.extra.frameNumbers), its Plane Position, and its segment; the plane
 * orientation and pixel measures are shared. Segments carry category / type
 * (/ modifier) codes (segment-codes.ts for defaults) and, when not MANUAL,
 * SegmentAlgorithmName and the Segmentation Algorithm Identification
 * Sequence (algorithm family, name, version). Patient / study / frame of
 * reference come from the source Volume's meta (studyElements); series and
 * instance UIDs are new. De-identification and writing files are seg-write.ts's: this module
 * runs in the browser too (the viewer saves corrections as SEG).
 */
import { MedsegIoError } from '../errors.ts';
import { voxelCount, type Volume, type VoxelArray } from '../volume.ts';
import { rgbToDicomLab } from './color.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';
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
  studyElements,
  text,
} from './result-elements.ts';
import { R, SEG_SOP_CLASS } from './result-tags.ts';
import { newUid } from './uid.ts';
import { dataset, el } from './write.ts';

export interface SegmentDescription {
  /** Segment number (1..n); for a label map, the label value. */
  number: number;
  label: string;
  description?: string;
  /** sRGB 0..255; stored as CIELab. */
  rgb?: [number, number, number];
  category?: Code;
  type?: Code;
  /** Segmented Property Type Modifier (e.g. laterality, anterior / posterior). */
  typeModifier?: Code;
  algorithmType?: 'MANUAL' | 'AUTOMATIC' | 'SEMIAUTOMATIC';
  algorithmName?: string;
  /** Written in the Segmentation Algorithm Identification Sequence (default: softwareVersions). */
  algorithmVersion?: string;
  /** Algorithm family (CID 7162; default DCM 123110 "Artificial Intelligence"). */
  algorithmFamily?: Code;
}

export interface SegBuildOptions {
  /** Write every slice of every segment, not only the non-empty ones. */
  allFrames?: boolean;
  /**
   * FRACTIONAL SEG: masks are values 0..1 (probabilities by default, or
   * occupancy), stored as round(value * 255) with MaximumFractionalValue 255.
   */
  fractional?: 'PROBABILITY' | 'OCCUPANCY';
  seriesDescription?: string;
  seriesNumber?: number;
  contentLabel?: string;
  contentCreatorName?: string;
  manufacturer?: string;
  softwareVersions?: string;
}

/** Sensible defaults when the caller gives no codes: SNOMED CT "Anatomical Structure" / "Tissue". */
export const DEFAULT_CATEGORY: Code = { value: '91723000', scheme: 'SCT', meaning: 'Anatomical Structure' };
export const DEFAULT_TYPE: Code = { value: '85756007', scheme: 'SCT', meaning: 'Tissue' };
const MAX_FRACTIONAL = 255;

export type Masks = Volume | Map<number, Volume | VoxelArray>;

/** The grid and DICOM references a SEG is written against: a Volume read by readDicomSeries, or readSeriesGrids' header-only grid. */
export type SegSource = Pick<Volume, 'size' | 'spacing' | 'origin' | 'direction' | 'meta'>;

/** Builds the SEG dataset (no de-identification: seg-write.ts adds it); writeDicom serializes it. */
export function buildSegDataset(masks: Masks, source: SegSource, segments: SegmentDescription[], opts: SegBuildOptions = {}): DicomDataset {
  const [nx, ny, nz] = source.size;
  const plane = nx * ny;
  const n = voxelCount(source);
  const fractional = opts.fractional;
  if (nx > 65535 || ny > 65535) throw new MedsegIoError('BAD_GEOMETRY', 'image too large for DICOM Rows/Columns');
  const sops = source.meta.sopInstanceUIDs;
  if (!sops || sops.length !== nz) {
    throw new MedsegIoError('BAD_DATA', 'source volume has no SOP instance UIDs per slice (read it with readDicomSeries)');
  }
  if (!segments.length) throw new MedsegIoError('BAD_DATA', 'no segments to write');
  if (fractional && !(masks instanceof Map)) throw new MedsegIoError('BAD_DATA', 'a FRACTIONAL SEG needs one 0..1 mask per segment, not a label map');
  // One accessor per segment: the stored value of voxel i (0/1, or 0..255 for FRACTIONAL).
  const valueOf = new Map<number, (i: number) => number>();
  const nums = new Set<number>();
  for (const s of segments) {
    if (!Number.isInteger(s.number) || s.number < 1 || s.number > 65535 || nums.has(s.number)) {
      throw new MedsegIoError('BAD_DATA', `bad or duplicate segment number ${s.number}`);
    }
    nums.add(s.number);
    if (masks instanceof Map) {
      const m = masks.get(s.number);
      if (!m) throw new MedsegIoError('BAD_DATA', `no mask for segment ${s.number}`);
      const arr: ArrayLike<number> = 'data' in m ? m.data : m;
      if (arr.length !== n) throw new MedsegIoError('BAD_GEOMETRY', `mask of segment ${s.number} has ${arr.length} voxels, source has ${n}`);
      valueOf.set(s.number, fractional ? (i) => Math.round(Math.min(1, Math.max(0, arr[i]! || 0)) * MAX_FRACTIONAL) : (i) => (arr[i]! >= 0.5 ? 1 : 0));
    } else {
      const arr = masks.data;
      if (arr.length !== n || masks.channels !== 1) throw new MedsegIoError('BAD_GEOMETRY', `label map has ${arr.length} voxels, source has ${n}`);
      const v = s.number;
      valueOf.set(v, (i) => (arr[i] === v ? 1 : 0));
    }
  }

  const d = source.direction;
  const normal = [d[2], d[5], d[8]];
  const iop = [d[0], d[3], d[6], d[1], d[4], d[7]];
  const sopClass = sourceSopClass(source);
  const frameNumbers = sourceFrameNumbers(source);

  // Frames: segment-major, slice order; non-empty only unless allFrames.
  const frames: { seg: number; segIndex: number; z: number }[] = [];
  segments.forEach((s, si) => {
    const f = valueOf.get(s.number)!;
    for (let z = 0; z < nz; z++) {
      let any = opts.allFrames === true;
      for (let i = z * plane; !any && i < (z + 1) * plane; i++) any = f(i) !== 0;
      if (any) frames.push({ seg: s.number, segIndex: si + 1, z });
    }
  });
  if (frames.length === 0) {
    // A SEG must hold at least one frame: keep one empty frame of the first segment.
    frames.push({ seg: segments[0]!.number, segIndex: 1, z: 0 });
  }
  let pixels: Uint8Array;
  if (fractional) {
    pixels = new Uint8Array(frames.length * plane + ((frames.length * plane) % 2));
    frames.forEach((fr, k) => {
      const f = valueOf.get(fr.seg)!;
      for (let i = 0, o = k * plane, src = fr.z * plane; i < plane; i++) pixels[o + i] = f(src + i);
    });
  } else {
    const bytes = Math.ceil((frames.length * plane) / 8);
    pixels = new Uint8Array(bytes + (bytes % 2));
    frames.forEach((fr, k) => {
      const f = valueOf.get(fr.seg)!;
      let bit = k * plane;
      for (let i = fr.z * plane; i < (fr.z + 1) * plane; i++, bit++) if (f(i)) pixels[bit >>> 3]! |= 1 << (bit & 7);
    });
  }

  const now = new Date();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const seriesUid = newUid();
  const sopUid = newUid();
  const positionOf = (z: number) => [0, 1, 2].map((k) => source.origin[k]! + z * source.spacing[2] * normal[k]!);
  const softwareVersions = opts.softwareVersions ?? '0.1.0';

  const perFrame = frames.map((fr) =>
    dataset(
      el.seq(T.DerivationImageSequence, [
        dataset(
          el.seq(T.SourceImageSequence, [
            dataset(
              el.str(T.ReferencedSOPClassUID, 'UI', sopClass),
              el.str(T.ReferencedSOPInstanceUID, 'UI', sops[fr.z]!),
              frameNumbers ? el.nums(T.ReferencedFrameNumber, 'IS', [frameNumbers[fr.z]!]) : undefined,
              el.seq(R.PurposeOfReferenceCodeSequence, [codeItem({ value: '121322', scheme: 'DCM', meaning: 'Source image for image processing operation' })]),
            ),
          ]),
          el.seq(T.DerivationCodeSequence, [codeItem({ value: '113076', scheme: 'DCM', meaning: 'Segmentation' })]),
        ),
      ]),
      el.seq(T.FrameContentSequence, [dataset(el.nums(T.DimensionIndexValues, 'UL', [fr.segIndex, fr.z + 1]))]),
      el.seq(T.PlanePositionSequence, [dataset(el.nums(T.ImagePositionPatient, 'DS', positionOf(fr.z)))]),
      el.seq(T.SegmentIdentificationSequence, [dataset(el.nums(T.ReferencedSegmentNumber, 'US', [fr.seg]))]),
    ),
  );

  const dimOrg = newUid();
  const segItems = segments.map((s, i) => {
    const algType = s.algorithmType ?? (s.algorithmName ? 'AUTOMATIC' : 'MANUAL');
    const algName = s.algorithmName ?? 'medseg';
    return dataset(
      el.seq(T.SegmentedPropertyCategoryCodeSequence, [codeItem(s.category ?? DEFAULT_CATEGORY)]),
      el.nums(T.SegmentNumber, 'US', [s.number]),
      text(T.SegmentLabel, 'LO', s.label.slice(0, 64)),
      s.description ? text(T.SegmentDescription, 'ST', s.description) : undefined,
      el.str(T.SegmentAlgorithmType, 'CS', algType),
      algType !== 'MANUAL' ? text(T.SegmentAlgorithmName, 'LO', algName.slice(0, 64)) : undefined,
      algType !== 'MANUAL'
        ? el.seq(R.SegmentationAlgorithmIdentificationSequence, [
            algorithmIdentification(s.algorithmFamily ?? AI_ALGORITHM_FAMILY, algName, s.algorithmVersion ?? softwareVersions),
          ])
        : undefined,
      el.nums(T.RecommendedDisplayCIELabValue, 'US', rgbToDicomLab(s.rgb ?? DEFAULT_COLOURS[i % DEFAULT_COLOURS.length]!)),
      el.seq(T.SegmentedPropertyTypeCodeSequence, [
        dataset(
          ...codeItem(s.type ?? DEFAULT_TYPE).elements.values(),
          s.typeModifier ? el.seq(R.SegmentedPropertyTypeModifierCodeSequence, [codeItem(s.typeModifier)]) : undefined,
        ),
      ]),
    );
  });

  const ds = dataset(
    el.str(T.SpecificCharacterSet, 'CS', 'ISO_IR 192'),
    el.str(T.ImageType, 'CS', ['DERIVED', 'PRIMARY']),
    el.str(R.InstanceCreationDate, 'DA', date),
    el.str(R.InstanceCreationTime, 'TM', time),
    el.str(T.SOPClassUID, 'UI', SEG_SOP_CLASS),
    el.str(T.SOPInstanceUID, 'UI', sopUid),
    el.str(T.SeriesDate, 'DA', date),
    el.str(T.ContentDate, 'DA', date),
    el.str(T.SeriesTime, 'TM', time),
    el.str(T.ContentTime, 'TM', time),
    el.str(T.Modality, 'CS', 'SEG'),
    ...studyElements(source),
    ...equipmentElements({ manufacturer: opts.manufacturer, softwareVersions, deviceSerialNumber: '1' }),
    text(T.SeriesDescription, 'LO', opts.seriesDescription ?? 'Segmentation'),
    el.seq(T.ReferencedSeriesSequence, [
      dataset(
        el.seq(
          T.ReferencedInstanceSequence,
          distinctInstances(sops).map((u) => dataset(el.str(T.ReferencedSOPClassUID, 'UI', sopClass), el.str(T.ReferencedSOPInstanceUID, 'UI', u))),
        ),
        el.str(T.SeriesInstanceUID, 'UI', source.meta.seriesInstanceUID ?? ''),
      ),
    ]),
    el.str(T.SeriesInstanceUID, 'UI', seriesUid),
    el.nums(T.SeriesNumber, 'IS', [opts.seriesNumber ?? 300]),
    el.nums(T.InstanceNumber, 'IS', [1]),
    el.str(T.FrameOfReferenceUID, 'UI', sourceFrameOfReference(source) ?? newUid()),
    el.str(T.PositionReferenceIndicator, 'LO', ''),
    el.seq(T.DimensionOrganizationSequence, [dataset(el.str(T.DimensionOrganizationUID, 'UI', dimOrg))]),
    el.seq(T.DimensionIndexSequence, [
      dataset(
        el.str(T.DimensionOrganizationUID, 'UI', dimOrg),
        el.tags(T.DimensionIndexPointer, [T.ReferencedSegmentNumber]),
        el.tags(T.FunctionalGroupPointer, [T.SegmentIdentificationSequence]),
        el.str(T.DimensionDescriptionLabel, 'LO', 'ReferencedSegmentNumber'),
      ),
      dataset(
        el.str(T.DimensionOrganizationUID, 'UI', dimOrg),
        el.tags(T.DimensionIndexPointer, [T.ImagePositionPatient]),
        el.tags(T.FunctionalGroupPointer, [T.PlanePositionSequence]),
        el.str(T.DimensionDescriptionLabel, 'LO', 'ImagePositionPatient'),
      ),
    ]),
    el.nums(T.SamplesPerPixel, 'US', [1]),
    el.str(T.PhotometricInterpretation, 'CS', 'MONOCHROME2'),
    el.nums(T.NumberOfFrames, 'IS', [frames.length]),
    el.nums(T.Rows, 'US', [ny]),
    el.nums(T.Columns, 'US', [nx]),
    el.nums(T.BitsAllocated, 'US', [fractional ? 8 : 1]),
    el.nums(T.BitsStored, 'US', [fractional ? 8 : 1]),
    el.nums(T.HighBit, 'US', [fractional ? 7 : 0]),
    el.nums(T.PixelRepresentation, 'US', [0]),
    el.str(T.LossyImageCompression, 'CS', '00'),
    el.str(T.SegmentationType, 'CS', fractional ? 'FRACTIONAL' : 'BINARY'),
    fractional ? el.nums(T.MaximumFractionalValue, 'US', [MAX_FRACTIONAL]) : undefined,
    fractional ? el.str(T.SegmentationFractionalType, 'CS', fractional) : undefined,
    el.seq(T.SegmentSequence, segItems),
    el.str(
      T.ContentLabel,
      'CS',
      (opts.contentLabel ?? 'SEGMENTATION')
        .toUpperCase()
        .replace(/[^A-Z0-9_ ]/g, '_')
        .slice(0, 16),
    ),
    el.str(T.ContentDescription, 'LO', ''),
    text(T.ContentCreatorName, 'PN', opts.contentCreatorName ?? ''),
    el.seq(T.SharedFunctionalGroupsSequence, [
      dataset(
        el.seq(T.PlaneOrientationSequence, [dataset(el.nums(T.ImageOrientationPatient, 'DS', iop))]),
        el.seq(T.PixelMeasuresSequence, [
          dataset(
            el.nums(T.SliceThickness, 'DS', [Number(source.meta.extra?.sliceThickness ?? source.spacing[2])]),
            el.nums(T.SpacingBetweenSlices, 'DS', [source.spacing[2]]),
            el.nums(T.PixelSpacing, 'DS', [source.spacing[1], source.spacing[0]]),
          ),
        ]),
      ),
    ]),
    el.seq(T.PerFrameFunctionalGroupsSequence, perFrame),
    el.bytes(T.PixelData, 'OB', pixels),
  );
  ds.utf8 = true;
  return ds;
}
