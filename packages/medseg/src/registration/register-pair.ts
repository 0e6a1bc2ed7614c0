/**
 * One registration of a moving image (and its labels) to a fixed image:
 * affine, then (unless affine only) a deformable field from instance
 * optimisation or from a trained registration network; gives back the
 * warped image, the warped labels (nearest neighbour) and the displacement
 * field, all as Volumes in the fixed image's geometry.
 *
 * The field follows ITK's convention (also ANTs'): at every fixed voxel, the
 * vector (LPS mm) from its world point to the moving image's point it takes
 * its value from; it is written with NIfTI's vector intent.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { affineLPS, type Volume, type VoxelArray } from '../io/volume.ts';
import { registerAffine, resampleAffine, type AffineOptions } from './affine.ts';
import { registerDeformable, type DeformableOptions } from './deformable.ts';
import { geometryOf, matmul4, normalizeIntensity, spatialShape, volumeTensor, type GridGeometry, type Mat4 } from './grid.ts';
import { foldingFraction, jacobianDeterminant } from './jacobian.ts';
import type { RegistrationModel } from './network.ts';
import { identityGrid } from './spatial.ts';

/** NIFTI_INTENT_VECTOR. */
export const NIFTI_INTENT_VECTOR = 1007;

export interface RegisterPairOptions {
  affine?: AffineOptions;
  affineOnly?: boolean;
  deformable?: DeformableOptions;
  /** A trained network predicts the deformable field instead of per-pair optimisation. */
  model?: RegistrationModel;
}

export interface RegisterPairResult {
  warpedImage: Volume;
  warpedLabels: Volume | null;
  /** Displacement (LPS mm, 3 channels) on the fixed grid. */
  field: Volume;
  /** Fixed world point -> moving world point of the affine stage (4x4 row-major, LPS mm). */
  affine: Mat4;
  /** Fraction of fixed voxels where the whole transform folds (Jacobian determinant <= 0). */
  foldingFraction: number;
  seconds: { affine: number; deformable: number };
}

function placed(v: Volume, normalize: boolean) {
  const image = volumeTensor(v);
  return { image: normalize ? torch.tidy(() => normalizeIntensity(image)) : image, geometry: geometryOf(v) };
}

function onFixedGrid(fixed: Volume, data: VoxelArray, channels: number, extra: Record<string, unknown> = {}): Volume {
  const g = geometryOf(fixed);
  return { data, size: g.size, channels, spacing: g.spacing, origin: g.origin, direction: g.direction, meta: { modality: fixed.meta.modality, extra } };
}

/** The displacement (LPS mm) of x -> affine(world(x + disp(x))) - world(x) on the fixed grid, planar channels. */
export function worldDisplacement(fixed: GridGeometry, affine: Mat4, disp: Tensor | null): Float32Array {
  return torch.tidy(() => {
    const shape = spatialShape(fixed);
    // fixed voxel indices (x, y, z) of every voxel: identity grid in index units
    const half = torch.tensor(new Float32Array(fixed.size.map((n) => (n - 1) / 2)), [3]);
    const index = identityGrid(shape).add(1).mul(half);
    const target = disp ? index.add(disp.permute([0, 2, 3, 4, 1])) : index;
    const toWorld = (m: Mat4, x: Tensor) => {
      const lin = torch.tensor(new Float32Array([m[0]!, m[1]!, m[2]!, m[4]!, m[5]!, m[6]!, m[8]!, m[9]!, m[10]!]), [3, 3]);
      return x.matmul(lin.t()).add(torch.tensor(new Float32Array([m[3]!, m[7]!, m[11]!]), [3]));
    };
    const world = affineLPS(fixed);
    const d = toWorld(matmul4(affine, world), target).sub(toWorld(world, index));
    return d.permute([0, 4, 1, 2, 3]).contiguous().toFloat32Array();
  });
}

export function registerPair(fixed: Volume, moving: Volume, movingLabels: Volume | null, o: RegisterPairOptions = {}): RegisterPairResult {
  if (fixed.size[2] < 2 || moving.size[2] < 2) throw new RangeError('registration needs 3D images (at least 2 slices)');
  if (movingLabels && movingLabels.size.some((n, k) => n !== moving.size[k])) {
    throw new RangeError(`moving labels ${movingLabels.size.join('x')} do not match the moving image ${moving.size.join('x')}`);
  }
  return torch.tidy(() => {
    const f = placed(fixed, true);
    const m = placed(moving, true);
    const t0 = performance.now();
    const affine = registerAffine(f, m, o.affine).matrix;
    const t1 = performance.now();
    let disp: Tensor | null = null;
    if (!o.affineOnly) {
      if (o.model) disp = o.model.predict(f, m, affine);
      else disp = torch.unkeep(registerDeformable(f, m, affine, o.deformable).displacement);
    }
    const t2 = performance.now();
    const raw = placed(moving, false);
    const warped = resampleAffine(raw, f.geometry, affine, { disp }).toFloat32Array();
    const labels = movingLabels ? resampleAffine(placed(movingLabels, false), f.geometry, affine, { disp, mode: 'nearest' }).toFloat32Array() : null;
    const fieldData = worldDisplacement(f.geometry, affine, disp);
    const det = jacobianDeterminant({ data: fieldData, size: f.geometry.size, spacing: f.geometry.spacing, direction: f.geometry.direction });
    const labelData = labels && movingLabels ? castLike(movingLabels.data, labels) : null;
    return {
      warpedImage: onFixedGrid(fixed, warped, 1),
      warpedLabels: labelData ? onFixedGrid(fixed, labelData, 1) : null,
      field: onFixedGrid(fixed, fieldData, 3, { intentCode: NIFTI_INTENT_VECTOR }),
      affine,
      foldingFraction: foldingFraction(det),
      seconds: { affine: (t1 - t0) / 1000, deformable: (t2 - t1) / 1000 },
    };
  });
}

/** Values rounded into an array of the same type as `like` (label maps keep their integer type). */
function castLike(like: VoxelArray, values: Float32Array): VoxelArray {
  const Ctor = like.constructor as new (n: number) => VoxelArray;
  const out = new Ctor(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round(values[i]!);
  return out;
}
