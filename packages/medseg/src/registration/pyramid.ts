/** Multi-resolution pyramids of registration images: coarser copies that keep their place in the world. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { F } from '@medseg/torch';
import type { Vec3 } from '../io/volume.ts';
import { resizedGeometry, type GridGeometry } from './grid.ts';

/** An image tensor [1, C, z, y, x] with the grid it lives on. */
export interface PlacedImage {
  image: Tensor;
  geometry: GridGeometry;
}

/** Voxels per axis at a shrink factor: round(n / f), at least `minSize` (or n when smaller). */
export function shrunkSize(size: Vec3, factor: number, minSize = 8): Vec3 {
  return size.map((n) => Math.min(n, Math.max(minSize, Math.round(n / factor)))) as Vec3;
}

/** The image averaged down by `factor` (area averaging), with its geometry. */
export function shrink(p: PlacedImage, factor: number, minSize = 8): PlacedImage {
  const size = shrunkSize(p.geometry.size, factor, minSize);
  if (size.every((n, k) => n === p.geometry.size[k])) return { image: p.image, geometry: p.geometry };
  const image = torch.tidy(() => F.adaptiveAvgPool(p.image, [size[2], size[1], size[0]]));
  return { image, geometry: resizedGeometry(p.geometry, size) };
}
