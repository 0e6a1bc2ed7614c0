/**
 * Geometry shared by the metrics: a voxel grid ([nx, ny, nz], x-fastest, as in
 * io/volume.ts) with spacing in mm, bounding boxes and crops of one label.
 *
 * An axis of size 1 is not a spatial dimension: a 2D image is [nx, ny, 1] and
 * its surfaces use 4-connectivity, its volumes are areas (mm^2).
 */
import type { Vec3, VoxelArray } from '../io/volume.ts';
import { MetricsError } from './metrics_errors.ts';

export interface Grid {
  size: Vec3;
  spacing: Vec3;
}

/** Half-open box: lo inclusive, hi exclusive, per axis. */
export interface Box {
  lo: Vec3;
  hi: Vec3;
}

export function validateGrid(g: Grid): number {
  const n = g.size.reduce((a, b) => a * b, 1);
  if (g.size.length !== 3 || !g.size.every((s) => Number.isInteger(s) && s >= 1) || !Number.isSafeInteger(n)) {
    throw new MetricsError('BAD_SHAPE', `grid size must be three positive integers [nx, ny, nz], got [${g.size.join(', ')}]`);
  }
  if (g.spacing.length !== 3 || !g.spacing.every((s) => Number.isFinite(s) && s > 0)) {
    throw new MetricsError('BAD_SPACING', `spacing must be three finite numbers > 0 (mm), got [${g.spacing.join(', ')}]`);
  }
  return n;
}

export function checkLength(a: { length: number }, n: number, what: string): void {
  if (a.length !== n) throw new MetricsError('BAD_SHAPE', `${what} has ${a.length} voxels, the grid has ${n}`);
}

/** Axes that are spatial dimensions (size > 1). */
export function activeAxes(size: Vec3): [boolean, boolean, boolean] {
  return [size[0] > 1, size[1] > 1, size[2] > 1];
}

/** Area (2D) or volume (3D) of one voxel: product of the spacing of the active axes. */
export function voxelMeasure(g: Grid): number {
  const act = activeAxes(g.size);
  let v = 1;
  for (let k = 0; k < 3; k++) if (act[k]) v *= g.spacing[k]!;
  return v;
}

export const boxVoxels = (b: Box): number => (b.hi[0] - b.lo[0]) * (b.hi[1] - b.lo[1]) * (b.hi[2] - b.lo[2]);

/**
 * Bounding box of the voxels equal to `label` (inside `region` when given), or
 * null when there are none.
 */
export function labelBox(labels: VoxelArray, size: Vec3, label: number, region?: VoxelArray): Box | null {
  const [nx, ny, nz] = size;
  let x0 = nx,
    y0 = ny,
    z0 = nz,
    x1 = -1,
    y1 = -1,
    z1 = -1;
  let i = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        if (labels[i] !== label || (region && region[i] === 0)) continue;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (z < z0) z0 = z;
        if (z > z1) z1 = z;
      }
    }
  }
  return x1 < 0 ? null : { lo: [x0, y0, z0], hi: [x1 + 1, y1 + 1, z1 + 1] };
}

export function unionBox(a: Box | null, b: Box | null): Box | null {
  if (!a) return b;
  if (!b) return a;
  return {
    lo: [Math.min(a.lo[0], b.lo[0]), Math.min(a.lo[1], b.lo[1]), Math.min(a.lo[2], b.lo[2])],
    hi: [Math.max(a.hi[0], b.hi[0]), Math.max(a.hi[1], b.hi[1]), Math.max(a.hi[2], b.hi[2])],
  };
}

/** The binary mask (label == `label`, inside `region`) restricted to `box`, x-fastest in the box. */
export function cropLabel(labels: VoxelArray, size: Vec3, box: Box, label: number, region?: VoxelArray): Uint8Array {
  const [nx, ny] = size;
  const [bx, by, bz] = [box.hi[0] - box.lo[0], box.hi[1] - box.lo[1], box.hi[2] - box.lo[2]];
  const out = new Uint8Array(bx * by * bz);
  let o = 0;
  for (let z = box.lo[2]; z < box.hi[2]; z++) {
    for (let y = box.lo[1]; y < box.hi[1]; y++) {
      let i = box.lo[0] + nx * (y + ny * z);
      for (let x = 0; x < bx; x++, i++, o++) {
        if (labels[i] === label && (!region || region[i] !== 0)) out[o] = 1;
      }
    }
  }
  return out;
}
