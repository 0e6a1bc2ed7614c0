/**
 * Affine registration: the 12 parameters of a world-space (LPS mm) affine map
 * from the fixed image's points to the moving image's, found by gradient
 * descent (Adam) on an image similarity, coarse to fine over an image
 * pyramid. The map starts as the translation that aligns the two images'
 * centres and is parametrised about the fixed image's centre, so that the
 * linear part and the translation are nearly decoupled.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { affineLPS } from '../io/volume.ts';
import { gridCentre, indexFromNormalized, indexFromWorld, matmul4, normalizedFromIndex, type GridGeometry, type Mat4 } from './grid.ts';
import { shrink, type PlacedImage } from './pyramid.ts';
import { mutualInformationLoss, nccLoss } from './similarity.ts';
import { sample, transformGrid } from './spatial.ts';

export interface AffineOptions {
  /** Shrink factors of the pyramid, coarse to fine (default [4, 2, 1]). */
  levels?: number[];
  /** Adam steps per level (default [80, 50, 30]). */
  iterations?: number[];
  similarity?: 'ncc' | 'mi';
  /** Learning rate of the linear part (unitless, default 0.01) and of the translation (mm, default 0.5). */
  lrLinear?: number;
  lrTranslation?: number;
  /** Start from aligned image centres (default) or from the identity. */
  initialize?: 'centres' | 'identity';
}

export interface AffineResult {
  /** 4x4 row-major: fixed world point (LPS mm) -> moving world point. */
  matrix: Mat4;
  /** Similarity loss at the last step of the finest level. */
  loss: number;
  iterations: number;
}

/**
 * grid_sample's theta for a world affine: fixed normalized coordinates ->
 * moving normalized coordinates (4x4).
 */
export function affineTheta(matrix: Mat4, fixed: GridGeometry, moving: GridGeometry): Mat4 {
  const left = matmul4(normalizedFromIndex(moving.size), indexFromWorld(moving));
  const right = matmul4(affineLPS(fixed), indexFromNormalized(fixed.size));
  return matmul4(left, matmul4(matrix, right));
}

const tensor44 = (m: Mat4) => torch.tensor(new Float64Array(m), [4, 4], { dtype: 'float64' });

/** The world affine of the parameters: x -> (I + W)(x - cf) + cm + t, as a differentiable [4, 4] float64 tensor. */
function affineOfParams(linear: Tensor, translation: Tensor, cf: readonly number[], cm: readonly number[]): Tensor {
  const lin = torch.eye(3, { dtype: 'float64' }).add(linear.reshape([3, 3]));
  const shift = torch
    .tensor(new Float64Array(cm), [3], { dtype: 'float64' })
    .add(translation)
    .sub(lin.matmul(torch.tensor(new Float64Array(cf), [3, 1], { dtype: 'float64' })).reshape([3]));
  const top = torch.cat([lin, shift.reshape([3, 1])], 1);
  return torch.cat([top, torch.tensor(new Float64Array([0, 0, 0, 1]), [1, 4], { dtype: 'float64' })], 0);
}

/** The moving image resampled on the fixed grid through a world affine (and an optional displacement in fixed voxels). */
export function resampleAffine(
  moving: PlacedImage,
  fixed: GridGeometry,
  matrix: Mat4,
  o: { mode?: 'bilinear' | 'nearest'; disp?: Tensor | null } = {},
): Tensor {
  return torch.tidy(() => {
    const grid = transformGrid([fixed.size[2], fixed.size[1], fixed.size[0]], affineTheta(matrix, fixed, moving.geometry), o.disp ?? null);
    return sample(moving.image, grid, { mode: o.mode ?? 'bilinear' });
  });
}

export function registerAffine(fixed: PlacedImage, moving: PlacedImage, o: AffineOptions = {}): AffineResult {
  const levels = o.levels ?? [4, 2, 1];
  const iterations = o.iterations ?? [80, 50, 30];
  if (iterations.length !== levels.length) throw new RangeError(`${levels.length} pyramid levels but ${iterations.length} iteration counts`);
  const cf = gridCentre(fixed.geometry);
  const cm = (o.initialize ?? 'centres') === 'centres' ? gridCentre(moving.geometry) : cf;
  const linear = torch.zeros([9], { dtype: 'float64' }).requiresGrad_().keep();
  const translation = torch.zeros([3], { dtype: 'float64' }).requiresGrad_().keep();
  const opt = new torch.optim.Adam([
    { params: [linear], lr: o.lrLinear ?? 0.01 },
    { params: [translation], lr: o.lrTranslation ?? 0.5 },
  ]);
  const base = opt.groups.map((g) => g.lr);
  let loss = NaN;
  let steps = 0;
  try {
    levels.forEach((factor, li) => {
      const f = shrink(fixed, factor);
      const m = shrink(moving, factor);
      const n = iterations[li]!;
      const left = tensor44(matmul4(normalizedFromIndex(m.geometry.size), indexFromWorld(m.geometry)));
      const right = tensor44(matmul4(affineLPS(f.geometry), indexFromNormalized(f.geometry.size)));
      const shape = [f.geometry.size[2], f.geometry.size[1], f.geometry.size[0]];
      for (let it = 0; it < n; it++) {
        // linear decay within a level, so each level ends with small steps
        opt.groups.forEach((g, k) => (g.lr = base[k]! * (1 - it / n) * (li === 0 ? 1 : 0.5)));
        loss = torch.tidy(() => {
          const theta = left
            .matmul(affineOfParams(linear, translation, cf, cm))
            .matmul(right)
            .narrow(0, 0, 3)
            .float();
          const warped = sample(m.image, transformGrid(shape, theta));
          const l = o.similarity === 'mi' ? mutualInformationLoss(warped, f.image) : nccLoss(warped, f.image);
          opt.zeroGrad();
          l.backward();
          opt.step();
          return l.item();
        });
        steps++;
      }
      if (f.image !== fixed.image) f.image.dispose();
      if (m.image !== moving.image) m.image.dispose();
      left.dispose();
      right.dispose();
    });
    const matrix = torch.noGrad(() => torch.tidy(() => Array.from(affineOfParams(linear, translation, cf, cm).flatten().toTypedArray() as Float64Array)));
    return { matrix, loss, iterations: steps };
  } finally {
    linear.dispose();
    translation.dispose();
  }
}
