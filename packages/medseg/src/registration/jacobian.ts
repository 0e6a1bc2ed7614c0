/**
 * The Jacobian determinant of a dense transform x -> x + u(x) and the
 * fraction of folding voxels (det <= 0), where the transform stops being
 * invertible. Derivatives are central differences inside the grid and
 * one-sided at its faces (numpy.gradient's rule); an axis of one voxel has
 * derivative 0.
 */
import { IDENTITY3, type Mat3, type Vec3 } from '../io/volume.ts';
import { invert3 } from './matrix.ts';

export interface DisplacementField {
  /** Three planar channels (the displacement's world or index-axis components), x-fastest like Volume.data. */
  data: Float32Array | Float64Array;
  size: Vec3;
  /** Voxel spacing in the field's units (1 for a field in voxels). */
  spacing: Vec3;
  /**
   * Directions of the voxel axes in the frame of the components (row-major,
   * columns = axes). Identity when the components are along the voxel axes.
   */
  direction?: Mat3;
}

/** det(I + du/dx) at every voxel, x-fastest. */
export function jacobianDeterminant(field: DisplacementField): Float64Array {
  const [nx, ny, nz] = field.size;
  const n = nx * ny * nz;
  if (field.data.length !== 3 * n) throw new Error(`a displacement field of ${field.size.join('x')} voxels needs ${3 * n} values, got ${field.data.length}`);
  const dir = field.direction ?? IDENTITY3;
  // world-from-index linear map M = D diag(spacing); d/dworld = d/dindex M^-1
  const M = [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => dir[r * 3 + c]! * field.spacing[c]!));
  const Minv = invert3(M);
  const strides = [1, nx, nx * ny];
  const dims = [nx, ny, nz];
  const out = new Float64Array(n);
  const u = field.data;
  const G = new Array<number>(9);
  const coord = [0, 0, 0];
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        coord[0] = x;
        coord[1] = y;
        coord[2] = z;
        for (let axis = 0; axis < 3; axis++) {
          const len = dims[axis]!;
          const p = coord[axis]!;
          const s = strides[axis]!;
          for (let c = 0; c < 3; c++) {
            const base = c * n + i;
            let d = 0;
            if (len > 1) {
              if (p === 0) d = u[base + s]! - u[base]!;
              else if (p === len - 1) d = u[base]! - u[base - s]!;
              else d = (u[base + s]! - u[base - s]!) / 2;
            }
            G[c * 3 + axis] = d;
          }
        }
        // J = I + G Minv
        const J = new Array<number>(9);
        for (let r = 0; r < 3; r++)
          for (let c = 0; c < 3; c++) J[r * 3 + c] = (r === c ? 1 : 0) + G[r * 3]! * Minv[c]! + G[r * 3 + 1]! * Minv[3 + c]! + G[r * 3 + 2]! * Minv[6 + c]!;
        out[i] = J[0]! * (J[4]! * J[8]! - J[5]! * J[7]!) - J[1]! * (J[3]! * J[8]! - J[5]! * J[6]!) + J[2]! * (J[3]! * J[7]! - J[4]! * J[6]!);
      }
  return out;
}

/** Fraction of voxels (inside `mask` when given) whose Jacobian determinant is <= 0. */
export function foldingFraction(det: ArrayLike<number>, mask?: ArrayLike<number>): number {
  let folded = 0;
  let total = 0;
  for (let i = 0; i < det.length; i++) {
    if (mask && !mask[i]) continue;
    total++;
    if (det[i]! <= 0) folded++;
  }
  return total === 0 ? 0 : folded / total;
}
