/**
 * The geometry a registration works in: volumes as [1, C, z, y, x] tensors,
 * 4x4 row-major affines between voxel indices, world mm (LPS) and
 * grid_sample's normalized coordinates (align_corners = true: -1 and +1 are
 * the centres of the first and last voxel), and the coarser grids of an
 * image pyramid that keep the world position of the image's extent.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { affineLPS, type Mat3, type Vec3, type Volume } from '../io/volume.ts';
import { invertAffine4, type Mat4 } from './matrix.ts';

export { invertAffine4, matmul4, type Mat4 } from './matrix.ts';

/** A voxel grid placed in the world: what a registration needs of a Volume. */
export interface GridGeometry {
  size: Vec3;
  spacing: Vec3;
  origin: Vec3;
  direction: Mat3;
}

export function geometryOf(v: GridGeometry): GridGeometry {
  return { size: [...v.size], spacing: [...v.spacing], origin: [...v.origin], direction: [...v.direction] };
}

/** Voxel index (x, y, z) -> grid_sample coordinate (align_corners = true) of a grid of `size`. */
export function normalizedFromIndex(size: Vec3): Mat4 {
  const s = size.map((n) => (n > 1 ? 2 / (n - 1) : 0));
  return [s[0]!, 0, 0, -1, 0, s[1]!, 0, -1, 0, 0, s[2]!, -1, 0, 0, 0, 1];
}

/** Inverse of normalizedFromIndex (an axis of size 1 maps every coordinate to index 0). */
export function indexFromNormalized(size: Vec3): Mat4 {
  const h = size.map((n) => (n - 1) / 2);
  return [h[0]!, 0, 0, h[0]!, 0, h[1]!, 0, h[1]!, 0, 0, h[2]!, h[2]!, 0, 0, 0, 1];
}

/** World (LPS mm) -> voxel index of a grid. */
export function indexFromWorld(g: GridGeometry): Mat4 {
  return invertAffine4(affineLPS(g));
}

/** World position (LPS mm) of the centre of a grid's extent. */
export function gridCentre(g: GridGeometry): Vec3 {
  const a = affineLPS(g);
  const c = g.size.map((n) => (n - 1) / 2);
  return [0, 1, 2].map((r) => a[r * 4]! * c[0]! + a[r * 4 + 1]! * c[1]! + a[r * 4 + 2]! * c[2]! + a[r * 4 + 3]!) as Vec3;
}

/**
 * The grid of `g` resized to `size`, covering the same extent (the resize of
 * adaptive average pooling and of linear interpolation without corner
 * alignment): voxel j of the new grid is centred on old index (j + 0.5) n/m - 0.5.
 */
export function resizedGeometry(g: GridGeometry, size: Vec3): GridGeometry {
  const scale = [0, 1, 2].map((k) => g.size[k]! / size[k]!);
  const spacing = [0, 1, 2].map((k) => g.spacing[k]! * scale[k]!) as Vec3;
  const shift = [0, 1, 2].map((k) => g.spacing[k]! * (scale[k]! - 1) * 0.5);
  const d = g.direction;
  const origin = [0, 1, 2].map((r) => g.origin[r]! + d[r * 3]! * shift[0]! + d[r * 3 + 1]! * shift[1]! + d[r * 3 + 2]! * shift[2]!) as Vec3;
  return { size: [...size], spacing, origin, direction: [...d] };
}

/** Channel 0 of a volume as a float32 tensor [1, 1, z, y, x] (the layout of Volume.data). */
export function volumeTensor(v: Volume, channel = 0): Tensor {
  const n = v.size[0] * v.size[1] * v.size[2];
  const data = Float32Array.from(v.data.subarray(channel * n, (channel + 1) * n) as ArrayLike<number>);
  return torch.tensor(data, [1, 1, v.size[2], v.size[1], v.size[0]]);
}

/** Tensor size [z, y, x] of a grid. */
export function spatialShape(g: Pick<GridGeometry, 'size'>): [number, number, number] {
  return [g.size[2], g.size[1], g.size[0]];
}

/**
 * An image's intensities mapped to [0, 1]: its minimum to 0 and its 99.5th
 * percentile to 1, clipped, so that one bright voxel does not compress the rest.
 */
export function normalizeIntensity(x: Tensor): Tensor {
  return torch.tidy(() => {
    const values = x.flatten().toFloat32Array();
    const sorted = Float32Array.from(values).sort();
    const lo = sorted[0] ?? 0;
    const hi = sorted[Math.min(sorted.length - 1, Math.floor(0.995 * (sorted.length - 1)))] ?? 1;
    const range = hi > lo ? hi - lo : 1;
    return x.sub(lo).div(range).clamp(0, 1);
  });
}
