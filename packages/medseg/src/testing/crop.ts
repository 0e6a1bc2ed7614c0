/** Test helper: a sub-block of a volume whose voxels stay where they were in patient space. */
import { allocVoxels, voxelTypeOf, type Vec3, type Volume } from '../io/volume.ts';

/** The block at voxel `start` (x, y, z) of `size`, its origin moved along the direction cosines. */
export function cropVolume(v: Volume, start: Vec3, size: Vec3): Volume {
  const [nx, ny] = v.size;
  const data = allocVoxels(voxelTypeOf(v.data), size[0] * size[1] * size[2]);
  for (let z = 0; z < size[2]; z++)
    for (let y = 0; y < size[1]; y++)
      for (let x = 0; x < size[0]; x++) data[(z * size[1] + y) * size[0] + x] = v.data[((z + start[2]) * ny + y + start[1]) * nx + x + start[0]]!;
  const d = v.direction;
  const origin = [0, 1, 2].map((r) => v.origin[r]! + [0, 1, 2].reduce((s, c) => s + d[r * 3 + c]! * v.spacing[c]! * start[c]!, 0)) as Vec3;
  return { ...v, data, size, origin };
}
