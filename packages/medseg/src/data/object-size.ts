/**
 * How large and how thick the labelled objects of a 2D dataset are, and
 * whether a plan's patch sees them whole.
 *
 * Why: on photo-size 2D images with large objects (dermoscopy, endoscopy,
 * ultrasound) a CPU budget shrinks the full-resolution patch below the object,
 * so the network never sees an object whole; training at a lower resolution
 * (what nnU-Net's 3D low-res stage does for large volumes) sees it whole at a
 * fraction of the cost. Thin structures (vessels, membranes) must keep their
 * resolution, so a coarser spacing is allowed only while the objects stay
 * several pixels thick.
 *
 * Per case: the extent of the foreground's bounding box, and its thickness:
 * twice the median, over foreground pixels, of the distance to the nearest
 * background pixel (a disc of radius R gives 0.59 R; a vessel of width w
 * gives w / 2), both in pixels of the case's own grid.
 */
import { squaredEdt } from '../eval/distance_edt.ts';
import type { Zyx } from '../plan/types.ts';
import { median } from '../util/quantile.ts';

export interface ForegroundSize {
  /** Bounding-box extent of the foreground, [y, x] pixels. */
  extent: [number, number];
  /** Twice the median distance of a foreground pixel to the background, pixels. */
  thickness: number;
}

/** The foreground size of one 2D label map ([y, x] = shape[1], shape[2], x fastest); null when it has no foreground. */
export function foregroundSize(label: Uint8Array, shape: Zyx): ForegroundSize | null {
  const [, ny, nx] = shape;
  let y0 = ny,
    y1 = -1,
    x0 = nx,
    x1 = -1;
  const background = new Uint8Array(label.length);
  for (let y = 0; y < ny; y++) {
    for (let x = 0; x < nx; x++) {
      const i = y * nx + x;
      if (label[i]! > 0) {
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      } else background[i] = 1;
    }
  }
  if (y1 < 0) return null;
  const d2 = squaredEdt(background, [nx, ny, 1], [1, 1, 1]);
  const inside: number[] = [];
  for (let i = 0; i < label.length; i++) if (label[i]! > 0 && Number.isFinite(d2[i]!)) inside.push(Math.sqrt(d2[i]!));
  // An all-foreground image has no background to measure from: as thick as it is small.
  const thickness = inside.length > 0 ? 2 * median(inside) : Math.min(ny, nx);
  return { extent: [y1 - y0 + 1, x1 - x0 + 1], thickness };
}

/** A dataset's typical object, in mm: medians over the cases that have foreground. */
export interface ObjectSize {
  /** Median bounding-box extent, [y, x] mm. */
  extentMm: [number, number];
  /** Median thickness, mm. */
  thicknessMm: number;
}

/** The dataset's typical object from per-case sizes and spacings; null when fewer than half the cases were measured. */
export function typicalObject(cases: { spacing: Zyx; foreground?: ForegroundSize | null }[]): ObjectSize | null {
  const measured = cases.filter((c): c is { spacing: Zyx; foreground: ForegroundSize } => !!c.foreground);
  if (measured.length === 0 || measured.length * 2 < cases.length) return null;
  return {
    extentMm: [median(measured.map((c) => c.foreground.extent[0] * c.spacing[1])), median(measured.map((c) => c.foreground.extent[1] * c.spacing[2]))],
    thicknessMm: median(measured.map((c) => c.foreground.thickness * Math.min(c.spacing[1], c.spacing[2]))),
  };
}

/** Thinnest a typical object may become, in pixels of a coarser grid. */
export const MIN_THICKNESS_PIXELS = 6;
/** Coarsening factors tried, smallest first. */
export const COARSER_FACTORS = [1.5, 2, 3, 4];

/** The fraction of the typical object's bounding box a 2D patch covers (1 when it covers it whole). */
export function patchCoverage(object: ObjectSize, patch: number[], spacing: [number, number]): number {
  return Math.min(1, (patch[0]! * spacing[0]) / object.extentMm[0]) * Math.min(1, (patch[1]! * spacing[1]) / object.extentMm[1]);
}

/** The coarsening factors of an in-plane spacing that keep the typical object MIN_THICKNESS_PIXELS thick. */
export function allowedFactors(object: ObjectSize, spacing: [number, number]): number[] {
  const finest = Math.max(spacing[0], spacing[1]);
  return COARSER_FACTORS.filter((f) => object.thicknessMm / (finest * f) >= MIN_THICKNESS_PIXELS);
}
