/**
 * Where each frame sits: position, orientation, pixel spacing and rescale of
 * a classic single-frame image or of one frame of an enhanced multi-frame
 * image (per-frame functional group first, then the shared one, then the
 * top-level attributes), plus the stacking rules shared by the series and
 * SEG readers.
 */
import { MedsegIoError } from '../errors.ts';
import type { Mat3, Vec3 } from '../volume.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';

export interface FramePlane {
  position?: Vec3;
  orientation?: number[]; // 6 direction cosines: row direction, column direction
  pixelSpacing?: [number, number]; // [between rows (y), between columns (x)]
  sliceThickness?: number;
  spacingBetweenSlices?: number;
  slope: number;
  intercept: number;
}

/** The functional group macro `seqTag` for frame i: per-frame item, else the shared item. */
export function functionalGroup(ds: DicomDataset, frame: number, seqTag: number): DicomDataset | undefined {
  const per = ds.seq(T.PerFrameFunctionalGroupsSequence)[frame]?.item(seqTag);
  return per ?? ds.item(T.SharedFunctionalGroupsSequence)?.item(seqTag);
}

function finite(v: number[], n: number): boolean {
  return v.length >= n && v.slice(0, n).every(Number.isFinite);
}

export function framePlane(ds: DicomDataset, frame: number): FramePlane {
  const enhanced = ds.has(T.PerFrameFunctionalGroupsSequence) || ds.has(T.SharedFunctionalGroupsSequence);
  const pick = (seqTag: number) => (enhanced ? functionalGroup(ds, frame, seqTag) : undefined) ?? ds;
  const ipp = pick(T.PlanePositionSequence).numbers(T.ImagePositionPatient);
  const iop = pick(T.PlaneOrientationSequence).numbers(T.ImageOrientationPatient);
  const measures = pick(T.PixelMeasuresSequence);
  let ps = measures.numbers(T.PixelSpacing);
  if (!finite(ps, 2)) ps = ds.numbers(0x00181164); // ImagerPixelSpacing (CR/DX)
  const pvt = pick(T.PixelValueTransformationSequence);
  const slope = pvt.number(T.RescaleSlope) ?? ds.number(T.RescaleSlope);
  const intercept = pvt.number(T.RescaleIntercept) ?? ds.number(T.RescaleIntercept);
  return {
    position: finite(ipp, 3) ? [ipp[0]!, ipp[1]!, ipp[2]!] : undefined,
    orientation: finite(iop, 6) ? iop.slice(0, 6) : undefined,
    pixelSpacing: finite(ps, 2) && ps[0]! > 0 && ps[1]! > 0 ? [ps[0]!, ps[1]!] : undefined,
    sliceThickness: measures.number(T.SliceThickness),
    spacingBetweenSlices: measures.number(T.SpacingBetweenSlices),
    slope: slope !== undefined && Number.isFinite(slope) ? slope : 1,
    intercept: intercept !== undefined && Number.isFinite(intercept) ? intercept : 0,
  };
}

export function cross(a: readonly number[], b: readonly number[]): Vec3 {
  return [a[1]! * b[2]! - a[2]! * b[1]!, a[2]! * b[0]! - a[0]! * b[2]!, a[0]! * b[1]! - a[1]! * b[0]!];
}

export function dot(a: readonly number[], b: readonly number[]): number {
  return a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;
}

function normalize(v: readonly number[], path?: string): Vec3 {
  const n = Math.hypot(v[0]!, v[1]!, v[2]!);
  if (!(n > 1e-6)) throw new MedsegIoError('BAD_GEOMETRY', `degenerate ImageOrientationPatient`, path);
  return [v[0]! / n, v[1]! / n, v[2]! / n];
}

/** Row, column and slice-normal unit vectors from the 6 direction cosines. */
export function orientationAxes(iop: readonly number[], path?: string): { row: Vec3; col: Vec3; normal: Vec3 } {
  const row = normalize(iop.slice(0, 3), path);
  const col = normalize(iop.slice(3, 6), path);
  if (Math.abs(dot(row, col)) > 1e-3) throw new MedsegIoError('BAD_GEOMETRY', 'ImageOrientationPatient rows are not orthogonal', path);
  return { row, col, normal: normalize(cross(row, col), path) };
}

/** Row-major 3x3 whose columns are the x (row), y (column) and z (normal) directions. */
export function directionMatrix(row: Vec3, col: Vec3, normal: Vec3): Mat3 {
  return [row[0], col[0], normal[0], row[1], col[1], normal[1], row[2], col[2], normal[2]];
}

export function sameOrientation(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < 6; i++) if (Math.abs(a[i]! - b[i]!) > 1e-3) return false;
  return true;
}

export interface StackCheck {
  spacing: number;
  /** Gaps that are not the nominal spacing: [after position, before position, gap mm]. */
  gaps: { from: number; to: number; gap: number }[];
}

/**
 * Slice spacing from sorted positions along the normal, and the gaps that
 * break a regular stack. The nominal spacing is the smallest gap (a missing
 * slice makes a gap larger, never smaller); a gap more than 10% (+1 µm) over
 * it is reported.
 */
export function checkStack(positions: number[]): StackCheck {
  if (positions.length < 2) return { spacing: NaN, gaps: [] };
  const d: number[] = [];
  for (let i = 1; i < positions.length; i++) d.push(positions[i]! - positions[i - 1]!);
  const nominal = Math.min(...d);
  const gaps: StackCheck['gaps'] = [];
  d.forEach((g, i) => {
    if (g > nominal * 1.1 + 1e-3) gaps.push({ from: positions[i]!, to: positions[i + 1]!, gap: g });
  });
  const spacing = gaps.length ? [...d].sort((a, b) => a - b)[Math.floor(d.length / 2)]! : (positions.at(-1)! - positions[0]!) / d.length;
  return { spacing, gaps };
}
