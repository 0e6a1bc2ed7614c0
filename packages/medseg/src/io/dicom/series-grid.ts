/**
 * A DICOM series' grid from its headers alone: the slices (frames) sorted
 * along the normal of their common orientation, the origin, spacing and
 * direction that readDicomSeries gives its Volume, and the references a
 * derived object (SEG) needs (SOP instance per slice, patient and study
 * attributes). series.ts decodes the pixels onto this grid; the viewer uses
 * readSeriesGrids to write a SEG in the page without decoding any pixel, so
 * nothing here imports a Node module or a pixel codec.
 *
 * Geometry: x = row direction, y = column direction, z = their cross product;
 * slices are sorted by the projection of ImagePositionPatient on z, and the z
 * spacing comes from those positions (SliceThickness is the thickness of the
 * slab, not the distance between slices, and is wrong for overlapping or
 * gapped reconstructions).
 */
import { MedsegIoError } from '../errors.ts';
import { IDENTITY3, type Mat3, type Vec3, type VolumeMeta } from '../volume.ts';
import { T } from './dictionary.ts';
import type { DicomFile, SkippedFile } from './files.ts';
import { parseDicom } from './parse.ts';
import { checkStack, directionMatrix, dot, framePlane, orientationAxes, sameOrientation, type FramePlane } from './planes.ts';

/** Modalities that hold no image of their own: listed, but never read as the series. */
export const NON_IMAGE = new Set(['SEG', 'SR', 'RTSTRUCT', 'RTPLAN', 'PR', 'KO', 'REG', 'RWV', 'DOC']);

/** Patient / study attributes kept in meta.extra.dicom so that derived objects (SEG) can copy them. */
export const COPIED: Record<string, number> = {
  PatientName: T.PatientName,
  PatientID: T.PatientID,
  PatientBirthDate: T.PatientBirthDate,
  PatientSex: T.PatientSex,
  PatientAge: T.PatientAge,
  StudyInstanceUID: T.StudyInstanceUID,
  StudyDate: T.StudyDate,
  StudyTime: T.StudyTime,
  StudyID: T.StudyID,
  AccessionNumber: T.AccessionNumber,
  ReferringPhysicianName: T.ReferringPhysicianName,
  StudyDescription: 0x00081030,
  SOPClassUID: T.SOPClassUID,
  FrameOfReferenceUID: T.FrameOfReferenceUID,
  SpecificCharacterSet: T.SpecificCharacterSet,
};

export function groupBySeries(files: DicomFile[]): Map<string, DicomFile[]> {
  const groups = new Map<string, DicomFile[]>();
  for (const f of files) {
    const uid = f.dataset.string(T.SeriesInstanceUID) ?? '(no SeriesInstanceUID)';
    const g = groups.get(uid);
    if (g) g.push(f);
    else groups.set(uid, [f]);
  }
  return groups;
}

/** One slice of the stack: a frame of a file, at its position along the normal. */
export interface StackedSlice {
  file: DicomFile;
  frame: number;
  plane: FramePlane;
  sop: string;
  /** Projection of ImagePositionPatient on the normal. */
  pos: number;
}

/** A series' grid (LPS, as Volume), and its slices in z order. */
export interface SeriesGrid {
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
  meta: VolumeMeta;
  slices: StackedSlice[];
}

export interface StackOptions {
  /** Accept missing slices / uneven gaps (stacked at the median spacing, with a warning). */
  allowGaps?: boolean;
  /** Frames per file (default: each file's NumberOfFrames). */
  frames?: number[];
  /** Warnings the caller already has (files it skipped), kept first in meta.extra.warnings. */
  warnings?: string[];
}

/** Frames a file holds by its header. */
export function framesOf(f: DicomFile): number {
  return Math.max(1, Math.trunc(f.dataset.number(T.NumberOfFrames) ?? 1) || 1);
}

/**
 * Sorts the frames of one series' files into a stack and derives its grid;
 * refuses mixed orientations or pixel spacings, two slices at one position,
 * and (unless allowGaps) missing slices. `where` names the series in errors;
 * unreadable files already left out (`skipped`) are named as a likely cause of gaps.
 */
export function stackSeries(files: DicomFile[], opts: StackOptions = {}, where?: string, skipped: SkippedFile[] = []): SeriesGrid {
  const frames = opts.frames ?? files.map(framesOf);
  const slices: StackedSlice[] = [];
  files.forEach((f, i) => {
    const sop = f.dataset.string(T.SOPInstanceUID) ?? '';
    for (let k = 0; k < frames[i]!; k++) slices.push({ file: f, frame: k, plane: framePlane(f.dataset, k), sop, pos: 0 });
  });
  if (!slices.length) throw new MedsegIoError('NOT_FOUND', 'no image frames in the series', where);
  const warnings: string[] = [...(opts.warnings ?? [])];
  let direction: Mat3 = IDENTITY3;
  let origin: Vec3 = [0, 0, 0];
  let zSpacing = 1;
  const first = slices[0]!;
  const ps = first.plane.pixelSpacing ?? [1, 1];
  if (!first.plane.pixelSpacing) warnings.push('no PixelSpacing: 1 mm assumed');
  if (slices.length === 1 && (!first.plane.orientation || !first.plane.position)) {
    // Projection radiograph (CR/DX/XA...): a 2D image with no patient geometry.
    warnings.push('no ImagePositionPatient/ImageOrientationPatient: identity geometry');
  } else {
    for (const s of slices) {
      if (!s.plane.orientation || !s.plane.position) {
        throw new MedsegIoError('BAD_GEOMETRY', 'slice without ImagePositionPatient/ImageOrientationPatient', s.file.path);
      }
      if (!sameOrientation(s.plane.orientation, first.plane.orientation!)) {
        throw new MedsegIoError(
          'INCONSISTENT_SERIES',
          `mixed orientations in one series: [${s.plane.orientation.join(', ')}] vs [${first.plane.orientation!.join(', ')}]`,
          s.file.path,
        );
      }
      const sps = s.plane.pixelSpacing ?? [1, 1];
      if (Math.abs(sps[0] - ps[0]) > 1e-4 * ps[0] || Math.abs(sps[1] - ps[1]) > 1e-4 * ps[1]) {
        throw new MedsegIoError('INCONSISTENT_SERIES', `PixelSpacing ${sps.join('\\')} differs from ${ps.join('\\')}`, s.file.path);
      }
    }
    const { row, col, normal } = orientationAxes(first.plane.orientation!, first.file.path);
    direction = directionMatrix(row, col, normal);
    for (const s of slices) s.pos = dot(s.plane.position!, normal);
    slices.sort((a, b) => a.pos - b.pos);
    for (let i = 1; i < slices.length; i++) {
      if (Math.abs(slices[i]!.pos - slices[i - 1]!.pos) < 1e-3) {
        throw new MedsegIoError(
          'INCONSISTENT_SERIES',
          `two slices at the same position ${slices[i]!.pos.toFixed(3)} mm (${slices[i - 1]!.file.path}, ${slices[i]!.file.path}): several acquisitions or time points in one series`,
          where,
        );
      }
    }
    origin = [...slices[0]!.plane.position!];
    if (slices.length > 1) {
      const stack = checkStack(slices.map((s) => s.pos));
      if (stack.gaps.length) {
        const list = stack.gaps.map((g) => `${g.gap.toFixed(3)} mm between ${g.from.toFixed(3)} and ${g.to.toFixed(3)}`).join('; ');
        if (!opts.allowGaps) {
          const cause = skipped.length ? ` (unreadable files left out: ${skipped.map((f) => f.path).join(', ')})` : '';
          throw new MedsegIoError(
            'MISSING_SLICES',
            `missing slices or uneven spacing: ${list} (nominal ${Math.min(...slices.slice(1).map((s, i) => s.pos - slices[i]!.pos)).toFixed(3)} mm)${cause}; pass allowGaps to accept`,
            where,
          );
        }
        warnings.push(`uneven slice spacing, stacked at ${stack.spacing.toFixed(4)} mm: ${list}`);
      }
      zSpacing = stack.spacing;
    } else {
      zSpacing = first.plane.spacingBetweenSlices ?? first.plane.sliceThickness ?? 1;
      if (!(zSpacing > 0)) zSpacing = 1;
    }
  }

  const ds = first.file.dataset;
  const dicom: Record<string, string> = {};
  for (const [k, tag] of Object.entries(COPIED)) {
    const v = ds.string(tag);
    if (v !== undefined) dicom[k] = v;
  }
  const columns = ds.number(T.Columns) ?? 0;
  const rows = ds.number(T.Rows) ?? 0;
  return {
    size: [columns, rows, slices.length],
    spacing: [ps[1], ps[0], zSpacing],
    origin,
    direction,
    slices,
    meta: {
      modality: ds.string(T.Modality) ?? 'unknown',
      patientId: ds.string(T.PatientID),
      patientName: ds.string(T.PatientName),
      studyInstanceUID: ds.string(T.StudyInstanceUID),
      seriesInstanceUID: ds.string(T.SeriesInstanceUID),
      frameOfReferenceUID: ds.string(T.FrameOfReferenceUID),
      sopInstanceUIDs: slices.map((s) => s.sop),
      sopClassUID: ds.string(T.SOPClassUID),
      seriesDescription: ds.string(T.SeriesDescription),
      sourcePath: where,
      extra: {
        transferSyntaxUID: first.file.transferSyntaxUID,
        // Frame of its instance for every slice when any instance is multi-frame (a SEG / RTSTRUCT references frames by number).
        frameNumbers: frames.some((n) => n > 1) ? slices.map((s) => s.frame + 1) : undefined,
        sourcePaths: slices.map((s) => s.file.path),
        sliceThickness: first.plane.sliceThickness,
        dicom,
        warnings,
      },
    },
  };
}

/** A series found among in-memory files: its grid, or why it has none. */
export interface FoundSeries {
  seriesInstanceUID: string;
  description: string;
  modality: string;
  grid?: SeriesGrid;
  problem?: string;
}

/**
 * Every image series among in-memory files (a folder the viewer opened), each
 * with its grid from the headers (pixel data is not parsed); files that are
 * not DICOM are passed over, and a series whose slices do not stack carries
 * the reason instead of a grid.
 */
export function readSeriesGrids(buffers: { name: string; bytes: Uint8Array }[], opts: { allowGaps?: boolean } = {}): FoundSeries[] {
  const parsed: DicomFile[] = [];
  for (const b of buffers) {
    try {
      parsed.push({ ...parseDicom(b.bytes, { path: b.name, untilTag: T.PixelData }), path: b.name });
    } catch {
      // Not DICOM (a DICOMDIR's neighbours, a README, a thumbnail): not part of any series.
    }
  }
  const found: FoundSeries[] = [];
  for (const [uid, files] of groupBySeries(parsed)) {
    const ds = files[0]!.dataset;
    const modality = ds.string(T.Modality) ?? 'unknown';
    if (NON_IMAGE.has(modality) || !files.every((f) => f.dataset.has(T.Rows) && f.dataset.has(T.Columns))) continue;
    const entry: FoundSeries = { seriesInstanceUID: uid, description: ds.string(T.SeriesDescription) ?? '', modality };
    try {
      entry.grid = stackSeries(files, opts, `series ${uid}`);
    } catch (e) {
      entry.problem = (e as Error).message;
    }
    found.push(entry);
  }
  return found;
}
