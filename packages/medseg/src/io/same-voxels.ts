/**
 * A label map moved onto another grid that holds the same voxels in another
 * order: a DICOM series as dcm2niix wrote it (NIfTI, often with rows flipped
 * or slices reversed) and as readDicomSeries stacks it. Each voxel of the
 * target grid takes the label of the source voxel at its position. Only an
 * exact correspondence is accepted (a permutation of the axes with flips, and
 * a whole-voxel shift that lands every target voxel on a source voxel): a
 * grid that would need interpolation is refused, since resampling a
 * correction would change what the person painted.
 */
import { MedsegIoError } from './errors.ts';
import { voxelCount, type Volume } from './volume.ts';

/** A grid in LPS mm, as Volume holds it. */
export type Grid = Pick<Volume, 'size' | 'spacing' | 'origin' | 'direction'>;

/** How far (in voxels) a mapped position may sit from a voxel centre: float32 NIfTI affines round positions by far less. */
const TOLERANCE = 0.05;

/**
 * For each axis of the target, the source axis it runs along, its sign and
 * the source index at target index 0; throws BAD_GEOMETRY when the grids are
 * not the same voxels.
 */
export function voxelCorrespondence(from: Grid, to: Grid): { axis: number[]; sign: number[]; start: number[] } {
  const df = from.direction;
  const dt = to.direction;
  // source index = diag(1/s_f) D_f^T (o_t - o_f + D_t diag(s_t) target index)
  const a = (r: number, c: number) => {
    let v = 0;
    for (let k = 0; k < 3; k++) v += df[k * 3 + r]! * dt[k * 3 + c]!;
    return (v * to.spacing[c]!) / from.spacing[r]!;
  };
  const b = [0, 1, 2].map((r) => {
    let v = 0;
    for (let k = 0; k < 3; k++) v += df[k * 3 + r]! * (to.origin[k]! - from.origin[k]!);
    return v / from.spacing[r]!;
  });
  const axis = [-1, -1, -1];
  const sign = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < 3; r++) {
      const v = a(r, c);
      if (Math.abs(Math.abs(v) - 1) < 1e-3) {
        axis[c] = r;
        sign[c] = Math.sign(v);
      } else if (Math.abs(v) > 1e-3 && (to.size[c]! > 1 || from.size[r]! > 1)) {
        throw new MedsegIoError('BAD_GEOMETRY', `the grids are not the same voxels: target axis ${c} runs ${v.toFixed(4)} voxels along source axis ${r}`);
      }
    }
  }
  if (new Set(axis).size !== 3 || axis.includes(-1)) {
    throw new MedsegIoError('BAD_GEOMETRY', 'the grids are not the same voxels: their axes do not correspond one to one (different spacing or orientation)');
  }
  const start = b.map((v, r) => {
    const n = Math.round(v);
    if (Math.abs(v - n) > TOLERANCE) throw new MedsegIoError('BAD_GEOMETRY', `the grids are shifted by ${(v - n).toFixed(3)} voxel along source axis ${r}`);
    return n;
  });
  if (voxelCount(from) !== voxelCount(to)) {
    throw new MedsegIoError('BAD_GEOMETRY', `the grids hold different voxels: ${from.size.join('x')} and ${to.size.join('x')}`);
  }
  for (let c = 0; c < 3; c++) {
    const r = axis[c]!;
    const first = start[r]!;
    const last = first + sign[c]! * (to.size[c]! - 1);
    if (Math.min(first, last) < 0 || Math.max(first, last) > from.size[r]! - 1) {
      throw new MedsegIoError('BAD_GEOMETRY', `the grids cover different regions: target axis ${c} reaches source index ${first}..${last} of ${from.size[r]}`);
    }
  }
  return { axis, sign, start };
}

/** The labels of `from` (x fastest) on the `to` grid, voxel for voxel. */
export function labelsOnGrid(labels: ArrayLike<number>, from: Grid, to: Grid): Uint8Array {
  if (labels.length !== voxelCount(from)) throw new MedsegIoError('BAD_GEOMETRY', `${labels.length} labels for a ${from.size.join('x')} grid`);
  const { axis, sign, start } = voxelCorrespondence(from, to);
  const stride = [1, from.size[0], from.size[0] * from.size[1]];
  // Source offset of target index 0, and how far one step along each target axis moves in the source.
  let base = 0;
  for (let r = 0; r < 3; r++) base += start[r]! * stride[r]!;
  const step = [0, 1, 2].map((c) => sign[c]! * stride[axis[c]!]!);
  const [nx, ny, nz] = to.size;
  const out = new Uint8Array(voxelCount(to));
  let o = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let src = base + k * step[2]! + j * step[1]!;
      for (let i = 0; i < nx; i++, src += step[0]!) out[o++] = labels[src]!;
    }
  }
  return out;
}
