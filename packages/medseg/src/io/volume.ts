/**
 * The one image type of medseg: 2D or 3D, one or more channels, with the
 * geometry needed to put every voxel at a place in the patient (mm).
 *
 * Conventions (the same as ITK / itk-wasm, so DICOM maps without flips):
 * - `size` is [nx, ny, nz] (2D images have nz = 1).
 * - `data` is planar and x-fastest: the value of voxel (x, y, z) in channel c is
 *   data[x + nx * (y + ny * (z + nz * c))]. Read as a C-order tensor that is
 *   [c, z, y, x], i.e. [C, D, H, W], which is what the network wants.
 * - World coordinates are LPS (DICOM / ITK). `direction` is a row-major 3x3
 *   matrix whose columns are the unit directions of the x, y and z voxel axes.
 *   NIfTI's RAS is converted on read and back on write (see geometry.ts).
 * - The data keeps its original dtype: label maps stay integer; use
 *   `castVolume(v, 'float32')` for the network.
 */
export type VoxelArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

export type VoxelType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

export type Vec3 = [number, number, number];
/** Row-major 3x3: [r00, r01, r02, r10, ...]; column j is the direction of voxel axis j. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

export interface VolumeMeta {
  modality?: string; // DICOM modality code: 'CT', 'MR', 'CR', 'DX', 'SEG', 'OT', or 'unknown'
  patientId?: string;
  patientName?: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  frameOfReferenceUID?: string;
  /** SOP instance UIDs of the source slices in z order (DICOM), for SEG references. */
  sopInstanceUIDs?: string[];
  sopClassUID?: string;
  seriesDescription?: string;
  sourcePath?: string;
  /** Format-specific extras (NIfTI intent, NRRD keys, ...): informational only. */
  extra?: Record<string, unknown>;
}

export interface Volume {
  data: VoxelArray;
  size: Vec3;
  channels: number;
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
  meta: VolumeMeta;
}

export const IDENTITY3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

export function voxelCount(v: Pick<Volume, 'size'>): number {
  return v.size[0] * v.size[1] * v.size[2];
}

export function voxelTypeOf(a: VoxelArray): VoxelType {
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Float32Array) return 'float32';
  return 'float64';
}

const CTORS = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
} as const;

export function allocVoxels(type: VoxelType, length: number): VoxelArray {
  return new CTORS[type](length);
}

export function castVolume(v: Volume, type: VoxelType): Volume {
  if (voxelTypeOf(v.data) === type) return v;
  const out = allocVoxels(type, v.data.length);
  out.set(v.data as ArrayLike<number>);
  return { ...v, data: out };
}

/** 4x4 row-major affine mapping voxel index (x, y, z, 1) to LPS mm. */
export function affineLPS(v: Pick<Volume, 'spacing' | 'origin' | 'direction'>): number[] {
  const d = v.direction;
  const s = v.spacing;
  const o = v.origin;
  return [d[0] * s[0], d[1] * s[1], d[2] * s[2], o[0], d[3] * s[0], d[4] * s[1], d[5] * s[2], o[1], d[6] * s[0], d[7] * s[1], d[8] * s[2], o[2], 0, 0, 0, 1];
}

/** The same affine in RAS (NIfTI, nibabel): LPS -> RAS negates the first two world axes. */
export function affineRAS(v: Pick<Volume, 'spacing' | 'origin' | 'direction'>): number[] {
  const a = affineLPS(v);
  for (let j = 0; j < 4; j++) {
    a[j] = -a[j]!;
    a[4 + j] = -a[4 + j]!;
  }
  return a;
}
