/**
 * Surfaces and surface distances of binary masks.
 *
 * Surface voxels: foreground voxels with at least one background neighbour
 * among the 6 face neighbours (3D) or 4 edge neighbours (2D; an axis of size 1
 * is not a dimension), where outside the image counts as background. This is
 * exactly `mask ^ scipy.ndimage.binary_erosion(mask)` (default cross structure,
 * border_value=0), the edge definition of MONAI's get_mask_edges and of the
 * SciPy reference these functions are tested against.
 *
 * Directed distances: for each surface voxel of A, the Euclidean distance (mm,
 * with spacing) to the nearest surface voxel of B, from an exact EDT of B's
 * surface (MONAI's get_surface_distance, distance_metric="euclidean").
 * The EDT runs on the bounding box of A ∪ B only: every surface voxel of both
 * lies inside it, and the separable EDT is exact on any box that holds all the
 * feature voxels, so the crop changes nothing but the cost.
 */
import type { Vec3 } from '../io/volume.ts';
import { squaredEdt, type DistanceBuffer } from './distance_edt.ts';
import { activeAxes } from './metrics_grid.ts';
import { percentileSorted } from '../util/quantile.ts';

/** Surface of a binary mask (grid `size`): voxels with a background face neighbour. */
export function surfaceOf(mask: Uint8Array, size: Vec3, active: [boolean, boolean, boolean] = activeAxes(size)): Uint8Array {
  const [nx, ny, nz] = size;
  const plane = nx * ny;
  const out = new Uint8Array(mask.length);
  let i = 0;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        if (mask[i] === 0) continue;
        const edge =
          (active[0] && (x === 0 || mask[i - 1] === 0 || x === nx - 1 || mask[i + 1] === 0)) ||
          (active[1] && (y === 0 || mask[i - nx] === 0 || y === ny - 1 || mask[i + nx] === 0)) ||
          (active[2] && (z === 0 || mask[i - plane] === 0 || z === nz - 1 || mask[i + plane] === 0));
        if (edge) out[i] = 1;
      }
    }
  }
  return out;
}

export interface SurfaceDistances {
  /** Distance (mm) from each surface voxel of the prediction to the reference surface. */
  predToRef: Float64Array;
  /** Distance (mm) from each surface voxel of the reference to the predicted surface. */
  refToPred: Float64Array;
}

/**
 * Directed surface distances between two binary masks given on the same box
 * (typically the bounding box of their union, see metrics_grid.cropLabel).
 * `active` says which axes are spatial (pass the full image's, since a crop can
 * be one voxel thick along a real axis). When one surface is empty, the other
 * side's distances are all Infinity; when both are, both arrays are empty.
 */
export function surfaceDistances(
  pred: Uint8Array,
  ref: Uint8Array,
  size: Vec3,
  spacing: Vec3,
  active: [boolean, boolean, boolean] = activeAxes(size),
): SurfaceDistances {
  const sp = surfaceOf(pred, size, active);
  const sr = surfaceOf(ref, size, active);
  let edt: DistanceBuffer | undefined;
  const directed = (from: Uint8Array, to: Uint8Array): Float64Array => {
    let count = 0;
    let any = false;
    for (let i = 0; i < from.length; i++) {
      count += from[i]!;
      if (to[i] !== 0) any = true;
    }
    const out = new Float64Array(count);
    if (count === 0) return out;
    if (!any) return out.fill(Infinity);
    // Axes of size 1 in the crop contribute nothing whatever their spacing.
    edt = squaredEdt(to, size, spacing, edt);
    for (let i = 0, o = 0; o < count; i++) if (from[i] !== 0) out[o++] = Math.sqrt(edt[i]!);
    return out;
  };
  return { predToRef: directed(sp, sr), refToPred: directed(sr, sp) };
}

export interface SurfaceMetrics {
  hausdorff: number;
  hd95: number;
  assd: number;
  surfaceDice: number;
}

/**
 * Distance metrics from directed distances (sorts them in place).
 * - hausdorff: max over both directions.
 * - hd95: max of the 95th percentile of each direction (MONAI's
 *   compute_hausdorff_distance(percentile=95), NumPy linear interpolation).
 * - assd: mean of the union of both directions' distances (MONAI's
 *   compute_average_surface_distance(symmetric=True)).
 * - surfaceDice: (#pred surface voxels within tau of ref surface + #ref surface
 *   voxels within tau of pred surface) / (#pred + #ref surface voxels): the
 *   normalized surface Dice of Nikolov et al. with every surface voxel weighted
 *   equally, as MONAI's compute_surface_dice(use_subvoxels=False). It is not
 *   DeepMind's surface-distance package, which weights surfel areas.
 * Edge cases: both surfaces empty -> all NaN; one empty -> hausdorff, hd95,
 * assd = Infinity and surfaceDice = 0.
 */
export function surfaceMetrics(d: SurfaceDistances, tau: number): SurfaceMetrics {
  const a = d.predToRef.sort();
  const b = d.refToPred.sort();
  const na = a.length;
  const nb = b.length;
  if (na === 0 && nb === 0) return { hausdorff: NaN, hd95: NaN, assd: NaN, surfaceDice: NaN };
  if (na === 0 || nb === 0) return { hausdorff: Infinity, hd95: Infinity, assd: Infinity, surfaceDice: 0 };
  let sum = 0;
  let within = 0;
  for (let i = 0; i < na; i++) {
    sum += a[i]!;
    if (a[i]! <= tau) within++;
  }
  for (let i = 0; i < nb; i++) {
    sum += b[i]!;
    if (b[i]! <= tau) within++;
  }
  return {
    hausdorff: Math.max(a[na - 1]!, b[nb - 1]!),
    hd95: Math.max(percentileSorted(a, 95), percentileSorted(b, 95)),
    assd: sum / (na + nb),
    surfaceDice: within / (na + nb),
  };
}
