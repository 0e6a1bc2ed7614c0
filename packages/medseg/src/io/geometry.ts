/**
 * Geometry helpers: affine <-> (spacing, origin, direction), LPS <-> RAS,
 * anatomical orientation codes, and reorientation of the voxel grid.
 *
 * Affines are 4x4 row-major number[16] mapping voxel index (x, y, z, 1) to
 * world mm. Volumes are LPS (see volume.ts); NIfTI is RAS.
 */
import { MedsegIoError } from './errors.ts';
import { affineLPS, allocVoxels, voxelTypeOf, type Mat3, type Vec3, type Volume } from './volume.ts';

export interface Geometry {
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
}

/** LPS <-> RAS: negate the first two world rows. The map is its own inverse. */
export function flipLpsRas(affine: readonly number[]): number[] {
  const a = affine.slice(0, 16);
  for (let j = 0; j < 4; j++) {
    a[j] = -a[j]!;
    a[4 + j] = -a[4 + j]!;
  }
  return a;
}
export const lpsToRas = flipLpsRas;
export const rasToLps = flipLpsRas;

export function composeAffine(g: Geometry): number[] {
  return affineLPS(g);
}

function det3(m: readonly number[]): number {
  return m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/**
 * Split a 4x4 affine into spacing (column norms), origin and unit direction
 * columns. Shear is not removed: the columns are only normalised, so every
 * voxel keeps its exact world position; a singular matrix is rejected.
 * An axis of size 1 whose column is all zero (2D images stored as 3D) gets
 * the right-handed completion of the other two axes and spacing 1.
 */
export function decomposeAffine(affine: readonly number[], size?: Vec3, path?: string): Geometry {
  if (affine.length < 12 || affine.slice(0, 12).some((v) => !Number.isFinite(v))) {
    throw new MedsegIoError('BAD_GEOMETRY', 'affine has non-finite entries', path);
  }
  const cols: Vec3[] = [0, 1, 2].map((j) => [affine[j]!, affine[4 + j]!, affine[8 + j]!] as Vec3);
  const spacing = cols.map((c) => Math.hypot(c[0], c[1], c[2])) as Vec3;
  const zeroAxes = [0, 1, 2].filter((j) => spacing[j] === 0);
  if (zeroAxes.length === 1 && size && size[zeroAxes[0]!] === 1) {
    const j = zeroAxes[0]!;
    const a = cols[(j + 1) % 3]!;
    const b = cols[(j + 2) % 3]!;
    const c = cross(a, b);
    const n = Math.hypot(c[0], c[1], c[2]);
    if (n > 0) {
      cols[j] = [c[0] / n, c[1] / n, c[2] / n];
      spacing[j] = 1;
    }
  }
  for (const s of spacing) {
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new MedsegIoError('BAD_GEOMETRY', `voxel spacing ${spacing.join(' x ')} is zero, negative or not finite`, path);
    }
  }
  const direction = [0, 0, 0, 0, 0, 0, 0, 0, 0] as Mat3;
  for (let j = 0; j < 3; j++) for (let i = 0; i < 3; i++) direction[i * 3 + j] = cols[j]![i]! / spacing[j]!;
  if (Math.abs(det3(direction)) < 1e-6) {
    throw new MedsegIoError('BAD_GEOMETRY', 'voxel axes are (nearly) parallel: singular direction matrix', path);
  }
  return { spacing, origin: [affine[3]!, affine[7]!, affine[11]!], direction };
}

/** Validate a geometry the way decomposeAffine would (used by writers and NRRD). */
export function checkGeometry(g: Geometry, path?: string): void {
  for (const s of g.spacing) {
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new MedsegIoError('BAD_GEOMETRY', `voxel spacing ${g.spacing.join(' x ')} is zero, negative or not finite`, path);
    }
  }
  if (!g.origin.every(Number.isFinite)) throw new MedsegIoError('BAD_GEOMETRY', 'origin is not finite', path);
  decomposeAffine(composeAffine(g), undefined, path);
}

const LPS_LETTERS = [
  ['L', 'R'],
  ['P', 'A'],
  ['S', 'I'],
] as const;

/**
 * For each voxel axis, the world axis it mostly runs along and its sign,
 * choosing distinct world axes greedily by largest component (like nibabel's
 * io_orientation for non-degenerate cases).
 */
function axisMapping(direction: Mat3): { world: number[]; sign: number[] } {
  const world = [-1, -1, -1];
  const sign = [1, 1, 1];
  const cand: Array<[number, number, number]> = [];
  for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) cand.push([Math.abs(direction[k * 3 + j]!), j, k]);
  cand.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  const usedW = new Set<number>();
  for (const [, j, k] of cand) {
    if (world[j] !== -1 || usedW.has(k)) continue;
    world[j] = k;
    usedW.add(k);
    sign[j] = direction[k * 3 + j]! < 0 ? -1 : 1;
  }
  return { world, sign };
}

/**
 * Anatomical code of the voxel axes: letter i is the direction voxel axis i
 * increases toward (nibabel's aff2axcodes convention): an identity LPS
 * direction is 'LPS', a NIfTI with identity RAS affine is 'RAS'.
 */
export function orientationCode(direction: Mat3): string {
  const { world, sign } = axisMapping(direction);
  return world.map((k, j) => LPS_LETTERS[k]![sign[j]! > 0 ? 0 : 1]).join('');
}

function parseCode(code: string): { world: number[]; sign: number[] } {
  const up = code.toUpperCase();
  const world: number[] = [];
  const sign: number[] = [];
  for (const ch of up) {
    const k = LPS_LETTERS.findIndex((p) => p[0] === ch || p[1] === ch);
    if (k < 0) throw new MedsegIoError('BAD_GEOMETRY', `bad orientation code ${code}`);
    world.push(k);
    sign.push(LPS_LETTERS[k]![0] === ch ? 1 : -1);
  }
  if (up.length !== 3 || new Set(world).size !== 3) throw new MedsegIoError('BAD_GEOMETRY', `bad orientation code ${code}`);
  return { world, sign };
}

/**
 * Permute / flip the voxel grid (every channel) so the axes follow `code`
 * ('RAS', 'LPS', ...); world positions of all voxels are unchanged. Applying
 * reorient(out, orientationCode(v.direction)) undoes it.
 */
export function reorient(v: Volume, code: string): Volume {
  const target = parseCode(code);
  const src = axisMapping(v.direction);
  // perm[i] = input axis feeding output axis i; flip[i] when it runs the other way
  const perm = [0, 0, 0];
  const flip = [false, false, false];
  for (let i = 0; i < 3; i++) {
    const j = src.world.indexOf(target.world[i]!);
    perm[i] = j;
    flip[i] = src.sign[j] !== target.sign[i];
  }
  const size = perm.map((j) => v.size[j]!) as Vec3;
  const spacing = perm.map((j) => v.spacing[j]!) as Vec3;
  const direction = [0, 0, 0, 0, 0, 0, 0, 0, 0] as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let r = 0; r < 3; r++) direction[r * 3 + i] = v.direction[r * 3 + perm[i]!]! * (flip[i] ? -1 : 1);
  }
  // new origin = world position of the input voxel that becomes output (0,0,0)
  const start = [0, 0, 0];
  for (let i = 0; i < 3; i++) if (flip[i]) start[perm[i]!] = v.size[perm[i]!]! - 1;
  const a = affineLPS(v);
  const origin = [0, 1, 2].map((r) => a[r * 4]! * start[0]! + a[r * 4 + 1]! * start[1]! + a[r * 4 + 2]! * start[2]! + a[r * 4 + 3]!) as Vec3;

  // input strides along each output axis
  const inStride = [1, v.size[0], v.size[0] * v.size[1]];
  const step = perm.map((j, i) => (flip[i] ? -inStride[j]! : inStride[j]!));
  const base0 = start[0]! * inStride[0]! + start[1]! * inStride[1]! + start[2]! * inStride[2]!;
  const nvox = v.size[0] * v.size[1] * v.size[2];
  const out = allocVoxels(voxelTypeOf(v.data), v.data.length);
  const [nx, ny, nz] = size;
  const [s0, s1, s2] = step as [number, number, number];
  const src2 = v.data;
  for (let c = 0; c < v.channels; c++) {
    let o = c * nvox;
    const cb = base0 + c * nvox;
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        let p = cb + z * s2 + y * s1;
        for (let x = 0; x < nx; x++, p += s0) out[o++] = src2[p]!;
      }
    }
  }
  return { ...v, data: out, size, spacing, origin, direction, meta: { ...v.meta } };
}

export function reorientToCanonical(v: Volume, code: 'RAS' | 'LPS' = 'RAS'): Volume {
  return reorient(v, code);
}

/** Inverse of reorientToCanonical: back to the axis order of `originalCode` (orientationCode of the source). */
export function reorientFromCanonical(v: Volume, originalCode: string): Volume {
  return reorient(v, originalCode);
}

/** World (LPS) position of a voxel index. */
export function voxelToWorld(v: Pick<Volume, 'spacing' | 'origin' | 'direction'>, ijk: readonly number[]): Vec3 {
  const a = affineLPS(v);
  return [0, 1, 2].map((r) => a[r * 4]! * ijk[0]! + a[r * 4 + 1]! * ijk[1]! + a[r * 4 + 2]! * ijk[2]! + a[r * 4 + 3]!) as Vec3;
}
