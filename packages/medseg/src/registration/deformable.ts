/**
 * Deformable registration by instance optimisation: a dense displacement (or,
 * diffeomorphic, a stationary velocity) field on the fixed grid, optimised
 * for one image pair by Adam on similarity + smoothness (+ warped-label Dice),
 * after an affine that stays fixed. The field is a coarse parameter grid
 * upsampled linearly, which keeps it smooth and the optimisation cheap.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { F } from '@medseg/torch';
import { affineTheta } from './affine.ts';
import { spatialShape, type Mat4 } from './grid.ts';
import type { PlacedImage } from './pyramid.ts';
import { diceLoss, diffusionLoss } from './regularization.ts';
import { similarityLoss, type SimilarityName } from './similarity.ts';
import { integrateVelocity, sample, transformGrid } from './spatial.ts';

export interface DeformableOptions {
  /** 'lncc' (local NCC, default), 'mi' (Parzen mutual information) or global 'ncc'. */
  similarity?: SimilarityName;
  /** Local NCC window in voxels (default 9). */
  window?: number;
  /** Weight of the diffusion penalty (default 1). */
  smoothness?: number;
  /** Integrate a velocity field by scaling and squaring instead of optimising the displacement itself. */
  diffeomorphic?: boolean;
  /** Squaring steps of the integration (default 7). */
  integrationSteps?: number;
  /** Weight of the warped-label Dice term when labels are given (default 1). */
  labelWeight?: number;
  iterations?: number;
  /** Adam learning rate in voxels (default 0.1). */
  lr?: number;
  /** The parameter grid is the fixed grid shrunk by this factor (default 2). */
  controlSpacing?: number;
}

/** One-hot label maps for the Dice term: moving on the moving grid, fixed on the fixed grid, same classes. */
export interface LabelPair {
  moving: Tensor;
  fixed: Tensor;
}

export interface DeformableResult {
  /** Displacement [1, 3, z, y, x] in fixed voxels (x, y, z), applied before the affine. */
  displacement: Tensor;
  loss: number;
  iterations: number;
}

/** The displacement of a field parameter: upsampled to the fixed grid, integrated when diffeomorphic. */
export function displacementOf(param: Tensor, shape: readonly number[], o: Pick<DeformableOptions, 'diffeomorphic' | 'integrationSteps'> = {}): Tensor {
  return torch.tidy(() => {
    const same = param.shape.slice(2).join() === shape.join();
    const field = same ? param : F.interpolate(param, { size: [...shape], mode: 'linear', alignCorners: true });
    return o.diffeomorphic ? integrateVelocity(field, o.integrationSteps ?? 7) : field;
  });
}

/** Similarity + smoothness (+ label Dice) of a displacement applied before the affine theta. */
export function registrationLoss(
  fixed: Tensor,
  moving: Tensor,
  theta: Mat4 | Tensor | null,
  disp: Tensor,
  o: DeformableOptions,
  labels?: LabelPair | null,
  regularized: Tensor = disp,
): Tensor {
  return torch.tidy(() => {
    const grid = transformGrid(fixed.shape.slice(2), theta, disp);
    let loss = similarityLoss(o.similarity ?? 'lncc', sample(moving, grid), fixed, o.window ?? 9).add(diffusionLoss(regularized).mul(o.smoothness ?? 1));
    if (labels) loss = loss.add(diceLoss(sample(labels.moving, grid), labels.fixed).mul(o.labelWeight ?? 1));
    return loss;
  });
}

export function registerDeformable(
  fixed: PlacedImage,
  moving: PlacedImage,
  affine: Mat4,
  o: DeformableOptions = {},
  labels?: LabelPair | null,
): DeformableResult {
  const shape = spatialShape(fixed.geometry);
  const spacing = o.controlSpacing ?? 2;
  const coarse = shape.map((n) => Math.max(2, Math.round(n / spacing)));
  const theta = affineTheta(affine, fixed.geometry, moving.geometry);
  const param = torch
    .zeros([1, 3, ...coarse])
    .requiresGrad_()
    .keep();
  const opt = new torch.optim.Adam([param], { lr: o.lr ?? 0.1 });
  const n = o.iterations ?? 150;
  let loss = NaN;
  try {
    for (let it = 0; it < n; it++) {
      loss = torch.tidy(() => {
        const disp = displacementOf(param, shape, o);
        const l = registrationLoss(
          fixed.image,
          moving.image,
          theta,
          disp,
          o,
          labels,
          o.diffeomorphic ? F.interpolate(param, { size: shape, mode: 'linear', alignCorners: true }) : disp,
        );
        opt.zeroGrad();
        l.backward();
        opt.step();
        return l.item();
      });
    }
    const displacement = torch.noGrad(() => displacementOf(param, shape, o)).keep();
    return { displacement, loss, iterations: n };
  } finally {
    param.dispose();
  }
}
