/**
 * DICOM Segmentation (SEG) reader: segment metadata, and masks / a label map
 * on a grid (the source series' Volume, or one built from the SEG's own
 * plane positions).
 *
 * BINARY frames are bit-packed and frame k starts at bit k*rows*cols (not on
 * a byte boundary when rows*cols is not a multiple of 8); FRACTIONAL frames
 * are 8-bit fractions of MaximumFractionalValue; LABELMAP (2024 addition)
 * frames hold segment numbers. Frames are decoded lazily one at a time, so a
 * SEG with thousands of frames never sits unpacked in memory all at once.
 */
import { readFile } from 'node:fs/promises';
import { MedsegIoError, type ReadLimits } from '../errors.ts';
import { checkAllocation, fsError, resolveLimits } from '../limits.ts';
import type { Vec3, Volume, VolumeMeta } from '../volume.ts';
import { dicomLabToRgb } from './color.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';
import { R, SEG_SOP_CLASS } from './result-tags.ts';
import { parseDicom } from './parse.ts';
import { loadCodecFor } from './codecs.ts';
import { checkNativeLength, checkPixelLimits, decodeFrames, decodeNative, pixelInfo, type PixelInfo } from './pixels.ts';
import { checkStack, directionMatrix, dot, framePlane, functionalGroup, orientationAxes, sameOrientation } from './planes.ts';

export { SEG_SOP_CLASS } from './result-tags.ts';

export interface Code {
  value: string;
  scheme: string;
  meaning: string;
}

export interface SegmentInfo {
  number: number;
  label: string;
  description?: string;
  algorithmType: string;
  algorithmName?: string;
  category?: Code;
  type?: Code;
  /** Segmented Property Type Modifier (laterality, anterior / posterior...). */
  typeModifier?: Code;
  anatomicRegion?: Code;
  /** From the Segmentation Algorithm Identification Sequence. */
  algorithmFamily?: Code;
  algorithmVersion?: string;
  /** RecommendedDisplayCIELabValue as stored (scaled 0..65535). */
  cielab?: [number, number, number];
  /** The same colour as sRGB 0..255. */
  rgb?: [number, number, number];
  trackingId?: string;
  trackingUid?: string;
}

export interface SegFrame {
  /** Segment the frame belongs to (BINARY / FRACTIONAL); undefined for LABELMAP. */
  segment?: number;
  position?: Vec3;
  orientation?: number[];
  referencedSopInstanceUID?: string;
  referencedFrameNumber?: number;
}

export interface DicomSegmentation {
  segmentationType: 'BINARY' | 'FRACTIONAL' | 'LABELMAP';
  fractionalType?: string;
  maxFractionalValue?: number;
  segments: SegmentInfo[];
  rows: number;
  columns: number;
  frames: SegFrame[];
  pixelSpacing?: [number, number];
  /** Value of pixels not covered by any frame in a LABELMAP (PixelPaddingValue), else 0. */
  paddingValue: number;
  referencedSeriesInstanceUID?: string;
  meta: VolumeMeta;
  /** Frame i as 0/1 (BINARY), 0..1 (FRACTIONAL) or segment numbers (LABELMAP). */
  frameData(i: number): Uint8Array | Uint16Array | Float32Array;
  /** Per-segment masks on `grid` (given by opts.source), when it was given. */
  masks?: Map<number, Volume>;
}

export interface SegReadOptions {
  limits?: Partial<ReadLimits>;
  /** The referenced series (from readDicomSeries): masks are placed on its grid. */
  source?: Volume;
}

export function code(ds: DicomDataset | undefined): Code | undefined {
  if (!ds) return undefined;
  const value = ds.string(T.CodeValue) ?? ds.string(0x00080119) /* LongCodeValue */ ?? ds.string(0x00080120); /* URNCodeValue */
  if (value === undefined) return undefined;
  return { value, scheme: ds.string(T.CodingSchemeDesignator) ?? '', meaning: ds.string(T.CodeMeaning) ?? '' };
}

export async function readDicomSeg(path: string, opts: SegReadOptions = {}): Promise<DicomSegmentation> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  // A compressed SEG needs its codec loaded before the synchronous parse.
  await loadCodecFor(parseDicom(buf, { path, untilTag: T.PixelData }).transferSyntaxUID);
  return parseDicomSeg(buf, { ...opts, path });
}

export function parseDicomSeg(buf: Uint8Array, opts: SegReadOptions & { path?: string } = {}): DicomSegmentation {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const file = parseDicom(buf, { path, limits });
  const ds = file.dataset;
  const sopClass = ds.string(T.SOPClassUID);
  if (sopClass !== SEG_SOP_CLASS && ds.string(T.Modality) !== 'SEG') {
    throw new MedsegIoError('UNSUPPORTED', `not a DICOM SEG (SOP class ${sopClass ?? 'none'})`, path);
  }
  const type = (ds.string(T.SegmentationType) ?? '').toUpperCase();
  if (type !== 'BINARY' && type !== 'FRACTIONAL' && type !== 'LABELMAP') {
    throw new MedsegIoError('UNSUPPORTED', `SegmentationType '${type}'`, path);
  }
  if (!ds.has(T.PixelData)) throw new MedsegIoError('BAD_DATA', 'no pixel data', path);
  const info = pixelInfo(ds, path);
  if (type === 'BINARY' && info.bitsAllocated !== 1) throw new MedsegIoError('BAD_DATA', `BINARY SEG with BitsAllocated ${info.bitsAllocated}`, path);
  if (type === 'FRACTIONAL' && info.bitsAllocated !== 8) throw new MedsegIoError('BAD_DATA', `FRACTIONAL SEG with BitsAllocated ${info.bitsAllocated}`, path);
  if (info.samplesPerPixel !== 1) throw new MedsegIoError('BAD_DATA', 'SEG with SamplesPerPixel != 1', path);
  // Validates sizes against the frame count before any per-frame work (a forged NumberOfFrames must not loop for ever).
  checkPixelLimits(info, limits, path);
  checkNativeLength(file, info, path);
  const perFrameCount = ds.seq(T.PerFrameFunctionalGroupsSequence).length;
  if (perFrameCount !== info.frames) {
    throw new MedsegIoError('BAD_DATA', `NumberOfFrames ${info.frames} but ${perFrameCount} per-frame functional group items`, path);
  }

  const segments: SegmentInfo[] = ds.seq(T.SegmentSequence).map((s) => {
    const lab = s.numbers(T.RecommendedDisplayCIELabValue);
    const cielab = lab.length === 3 && lab.every(Number.isFinite) ? (lab as [number, number, number]) : undefined;
    return {
      number: s.number(T.SegmentNumber) ?? NaN,
      label: s.string(T.SegmentLabel) ?? '',
      description: s.string(T.SegmentDescription),
      algorithmType: s.string(T.SegmentAlgorithmType) ?? '',
      algorithmName: s.string(T.SegmentAlgorithmName),
      category: code(s.item(T.SegmentedPropertyCategoryCodeSequence)),
      type: code(s.item(T.SegmentedPropertyTypeCodeSequence)),
      typeModifier: code(s.item(T.SegmentedPropertyTypeCodeSequence)?.item(R.SegmentedPropertyTypeModifierCodeSequence)),
      anatomicRegion: code(s.item(T.AnatomicRegionSequence)),
      algorithmFamily: code(s.item(R.SegmentationAlgorithmIdentificationSequence)?.item(R.AlgorithmFamilyCodeSequence)),
      algorithmVersion: s.item(R.SegmentationAlgorithmIdentificationSequence)?.string(R.AlgorithmVersion),
      cielab,
      rgb: cielab ? dicomLabToRgb(cielab) : undefined,
      trackingId: s.string(T.TrackingID),
      trackingUid: s.string(T.TrackingUID),
    };
  });
  if (segments.length === 0) throw new MedsegIoError('BAD_DATA', 'SEG has no SegmentSequence items', path);
  const numbers = new Set<number>();
  for (const s of segments) {
    if (!Number.isInteger(s.number) || numbers.has(s.number)) throw new MedsegIoError('BAD_DATA', `bad or duplicate SegmentNumber ${s.number}`, path);
    numbers.add(s.number);
  }

  const frames: SegFrame[] = [];
  for (let i = 0; i < info.frames; i++) {
    const plane = framePlane(ds, i);
    const src = functionalGroup(ds, i, T.DerivationImageSequence)?.item(T.SourceImageSequence);
    const segNo = functionalGroup(ds, i, T.SegmentIdentificationSequence)?.number(T.ReferencedSegmentNumber);
    if (type !== 'LABELMAP' && (segNo === undefined || !numbers.has(segNo))) {
      throw new MedsegIoError('BAD_DATA', `frame ${i + 1} references segment ${segNo ?? '(none)'} not in SegmentSequence`, path);
    }
    frames.push({
      segment: type === 'LABELMAP' ? undefined : segNo,
      position: plane.position,
      orientation: plane.orientation,
      referencedSopInstanceUID: src?.string(T.ReferencedSOPInstanceUID),
      referencedFrameNumber: src?.number(T.ReferencedFrameNumber),
    });
  }
  const ps = framePlane(ds, 0).pixelSpacing;
  const maxFrac = ds.number(T.MaximumFractionalValue) ?? 255;

  let decodedAll: ReturnType<typeof decodeFrames> | undefined;
  const pixel = ds.get(T.PixelData)!;
  const frameData = (i: number): Uint8Array | Uint16Array | Float32Array => {
    if (!(i >= 0 && i < info.frames)) throw new RangeError(`frame ${i}`);
    let raw;
    if (pixel.fragments) {
      decodedAll ??= decodeFrames(file, info, limits, path);
      raw = decodedAll[i]!;
    } else if (info.type === 'bit') {
      raw = decodeBitFrame(pixel.bytes, info, i);
    } else {
      const bpp = info.bitsAllocated / 8;
      const n = info.rows * info.columns;
      raw = decodeNative(pixel.bytes.subarray(i * n * bpp, (i + 1) * n * bpp), pixel.littleEndian, { ...info, frames: 1 }, path)[0]!;
    }
    if (type === 'FRACTIONAL') {
      const out = new Float32Array(raw.length);
      for (let k = 0; k < raw.length; k++) out[k] = Math.min(1, raw[k]! / maxFrac);
      return out;
    }
    return raw as Uint8Array | Uint16Array;
  };

  const seg: DicomSegmentation = {
    segmentationType: type,
    fractionalType: ds.string(T.SegmentationFractionalType),
    maxFractionalValue: type === 'FRACTIONAL' ? maxFrac : undefined,
    segments,
    rows: info.rows,
    columns: info.columns,
    frames,
    pixelSpacing: ps,
    paddingValue: type === 'LABELMAP' ? (ds.number(T.PixelPaddingValue) ?? 0) : 0,
    referencedSeriesInstanceUID: ds.item(T.ReferencedSeriesSequence)?.string(T.SeriesInstanceUID),
    meta: {
      modality: 'SEG',
      patientId: ds.string(T.PatientID),
      patientName: ds.string(T.PatientName),
      studyInstanceUID: ds.string(T.StudyInstanceUID),
      seriesInstanceUID: ds.string(T.SeriesInstanceUID),
      frameOfReferenceUID: ds.string(T.FrameOfReferenceUID),
      sopClassUID: sopClass,
      seriesDescription: ds.string(T.SeriesDescription),
      sourcePath: path,
      extra: { sopInstanceUID: ds.string(T.SOPInstanceUID), contentLabel: ds.string(T.ContentLabel), transferSyntaxUID: file.transferSyntaxUID },
    },
    frameData,
  };
  if (opts.source) seg.masks = segMasks(seg, opts.source, limits);
  return seg;
}

function decodeBitFrame(bytes: Uint8Array, info: PixelInfo, frame: number): Uint8Array {
  const n = info.rows * info.columns;
  const out = new Uint8Array(n);
  let bit = frame * n;
  let i = 0;
  // Bit by bit up to a byte boundary, then a byte at a time (the common, aligned case).
  for (; i < n && bit & 7; i++, bit++) out[i] = (bytes[bit >>> 3]! >>> (bit & 7)) & 1;
  for (let byte = bit >>> 3; i + 8 <= n; i += 8, byte++) {
    const b = bytes[byte]!;
    if (b === 0) continue;
    for (let k = 0; k < 8; k++) out[i + k] = (b >>> k) & 1;
  }
  for (bit = frame * n + i; i < n; i++, bit++) out[i] = (bytes[bit >>> 3]! >>> (bit & 7)) & 1;
  return out;
}

/**
 * z index of every frame on the grid: by ReferencedSOPInstanceUID when the
 * grid's meta lists it, else by the frame's position projected on the grid.
 */
export function placeFrames(seg: DicomSegmentation, grid: Volume): number[] {
  const path = seg.meta.sourcePath;
  const [nx, ny, nz] = grid.size;
  if (seg.columns !== nx || seg.rows !== ny) {
    throw new MedsegIoError('BAD_GEOMETRY', `SEG frames are ${seg.columns}x${seg.rows}, the grid is ${nx}x${ny}`, path);
  }
  const d = grid.direction;
  const axes = [0, 1, 2].map((j) => [d[j]!, d[3 + j]!, d[6 + j]!] as Vec3);
  const gridIop = [...axes[0]!, ...axes[1]!];
  const sops = grid.meta.sopInstanceUIDs ?? [];
  const frameNumbers = grid.meta.extra?.frameNumbers as number[] | undefined;
  const bySop = new Map<string, number>();
  sops.forEach((u, z) => bySop.set(frameNumbers ? `${u}#${frameNumbers[z]}` : u, z));
  return seg.frames.map((f, i) => {
    if (f.referencedSopInstanceUID) {
      const key = frameNumbers ? `${f.referencedSopInstanceUID}#${f.referencedFrameNumber ?? 1}` : f.referencedSopInstanceUID;
      const z = bySop.get(key);
      if (z !== undefined) return z;
    }
    if (!f.position) {
      throw new MedsegIoError('BAD_GEOMETRY', `frame ${i + 1} references no known source image and has no PlanePosition`, path);
    }
    if (f.orientation && !sameOrientation(f.orientation, gridIop)) {
      throw new MedsegIoError('BAD_GEOMETRY', `frame ${i + 1} orientation differs from the grid`, path);
    }
    const rel = [0, 1, 2].map((k) => f.position![k]! - grid.origin[k]!);
    const ijk = axes.map((a, j) => dot(rel, a) / grid.spacing[j]!);
    const z = Math.round(ijk[2]!);
    if (Math.abs(ijk[0]!) > 0.1 || Math.abs(ijk[1]!) > 0.1 || Math.abs(ijk[2]! - z) > 0.1 || z < 0 || z >= nz) {
      throw new MedsegIoError('BAD_GEOMETRY', `frame ${i + 1} at [${f.position.join(', ')}] is not a slice of the grid`, path);
    }
    return z;
  });
}

function emptyOn(grid: Volume, data: Uint8Array | Uint16Array | Float32Array, meta: VolumeMeta): Volume {
  return { data, size: [...grid.size], channels: 1, spacing: [...grid.spacing], origin: [...grid.origin], direction: [...grid.direction], meta };
}

/** One mask Volume per segment (uint8 0/1, or float32 0..1 for FRACTIONAL) on the grid. */
export function segMasks(seg: DicomSegmentation, grid: Volume, limits?: Partial<ReadLimits>): Map<number, Volume> {
  const lim = resolveLimits(limits);
  const plane = grid.size[0] * grid.size[1];
  const n = plane * grid.size[2];
  const frac = seg.segmentationType === 'FRACTIONAL';
  checkAllocation(n * seg.segments.length, frac ? 4 : 1, lim, seg.meta.sourcePath);
  const z = placeFrames(seg, grid);
  const out = new Map<number, Volume>();
  for (const s of seg.segments) {
    out.set(s.number, emptyOn(grid, frac ? new Float32Array(n) : new Uint8Array(n), { ...seg.meta, extra: { ...seg.meta.extra, segment: s } }));
  }
  seg.frames.forEach((f, i) => {
    const data = seg.frameData(i);
    const off = z[i]! * plane;
    if (seg.segmentationType === 'LABELMAP') {
      for (let k = 0; k < plane; k++) {
        const m = out.get(data[k]!);
        if (m) m.data[off + k] = 1;
      }
    } else {
      const dst = out.get(f.segment!)!.data;
      if (seg.segmentationType === 'BINARY') {
        for (let k = 0; k < plane; k++) if (data[k]) dst[off + k] = 1;
      } else {
        for (let k = 0; k < plane; k++) if (data[k]) dst[off + k] = Math.max(dst[off + k]!, data[k]!);
      }
    }
  });
  return out;
}

export interface LabelmapResult {
  labelmap: Volume;
  /** Voxels claimed by more than one segment, and which pairs overlap. */
  overlapVoxels: number;
  overlappingPairs: [number, number][];
}

/**
 * A label map (uint16 segment numbers) on the grid. Overlapping segments make
 * a label map lossy: by default that is an error (BAD_DATA naming the
 * pairs); with onOverlap 'last' the later segment wins and the overlap is reported.
 * FRACTIONAL frames are thresholded at 0.5.
 */
export function segLabelmap(seg: DicomSegmentation, grid: Volume, opts: { onOverlap?: 'error' | 'last' } = {}): LabelmapResult {
  const plane = grid.size[0] * grid.size[1];
  const n = plane * grid.size[2];
  const z = placeFrames(seg, grid);
  const data = new Uint16Array(n);
  const pairs = new Set<string>();
  let overlapVoxels = 0;
  if (seg.segmentationType === 'LABELMAP') {
    const covered = new Uint8Array(grid.size[2]);
    seg.frames.forEach((_, i) => {
      data.set(seg.frameData(i) as ArrayLike<number>, z[i]! * plane);
      covered[z[i]!] = 1;
    });
    covered.forEach((c, k) => {
      if (!c && seg.paddingValue) data.fill(seg.paddingValue, k * plane, (k + 1) * plane);
    });
  } else {
    const thr = seg.segmentationType === 'FRACTIONAL' ? 0.5 : 0.5;
    seg.frames.forEach((f, i) => {
      const fd = seg.frameData(i);
      const off = z[i]! * plane;
      for (let k = 0; k < plane; k++) {
        if (fd[k]! < thr) continue;
        const prev = data[off + k]!;
        if (prev && prev !== f.segment) {
          overlapVoxels++;
          pairs.add(`${Math.min(prev, f.segment!)},${Math.max(prev, f.segment!)}`);
        }
        data[off + k] = f.segment!;
      }
    });
  }
  const overlappingPairs = [...pairs].map((p) => p.split(',').map(Number) as [number, number]);
  if (overlapVoxels && opts.onOverlap !== 'last') {
    throw new MedsegIoError(
      'BAD_DATA',
      `segments overlap (${overlapVoxels} voxels; pairs ${overlappingPairs.map((p) => p.join('&')).join(', ')}): use segMasks, or onOverlap 'last'`,
      seg.meta.sourcePath,
    );
  }
  return { labelmap: emptyOn(grid, data, { ...seg.meta }), overlapVoxels, overlappingPairs };
}

/**
 * The SEG's own grid, for when the source series is not at hand: shared
 * orientation and pixel spacing, slices at the distinct frame positions.
 */
export function segGrid(seg: DicomSegmentation): Volume {
  const path = seg.meta.sourcePath;
  const f0 = seg.frames.find((f) => f.orientation && f.position);
  if (!f0 || !seg.pixelSpacing) throw new MedsegIoError('BAD_GEOMETRY', 'SEG frames carry no plane position/orientation: pass the source series', path);
  const { row, col, normal } = orientationAxes(f0.orientation!, path);
  const pos = [...new Set(seg.frames.filter((f) => f.position).map((f) => Math.round(dot(f.position!, normal) * 1e4) / 1e4))].sort((a, b) => a - b);
  const stack = checkStack(pos);
  const spacing = pos.length > 1 ? Math.min(...pos.slice(1).map((p, i) => p - pos[i]!)) : 1;
  const nz = pos.length > 1 ? Math.round((pos.at(-1)! - pos[0]!) / spacing) + 1 : 1;
  if (nz > 100000) throw new MedsegIoError('BAD_GEOMETRY', 'SEG frame positions span too many slices', path);
  const first = seg.frames.find((f) => f.position && Math.abs(dot(f.position, normal) - pos[0]!) < 1e-3)!;
  const origin: Vec3 = [...first.position!];
  return {
    data: new Uint8Array(0),
    size: [seg.columns, seg.rows, nz],
    channels: 1,
    spacing: [seg.pixelSpacing[1], seg.pixelSpacing[0], spacing],
    origin,
    direction: directionMatrix(row, col, normal),
    meta: { frameOfReferenceUID: seg.meta.frameOfReferenceUID, extra: { gaps: stack.gaps.length } },
  };
}
