/**
 * The spatial transformer: sampling grids built from an affine and a dense
 * displacement field, warping through grid_sample, and the integration of a
 * stationary velocity field by scaling and squaring (a diffeomorphism).
 *
 * Displacement fields are tensors [N, 3, z, y, x] in voxel units of the grid
 * they live on, channels (x, y, z) like grid_sample's last dimension.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { F } from '@medseg/torch';
import type { Mat4 } from './grid.ts';

/** grid_sample coordinates of every voxel of a [z, y, x] grid: [1, z, y, x, 3], (x, y, z) last. */
export function identityGrid(shape: readonly number[]): Tensor {
  return torch.tidy(() => {
    const theta = torch.tensor(new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]), [1, 3, 4]);
    return F.affineGrid(theta, [1, 1, ...shape], true);
  });
}

/** Per-channel factors that turn voxel displacements (x, y, z) into grid_sample units: 2 / (n - 1). */
function voxelToNormalized(shape: readonly number[]): Tensor {
  const [z, y, x] = shape as [number, number, number];
  const s = [x, y, z].map((n) => (n > 1 ? 2 / (n - 1) : 0));
  return torch.tensor(new Float32Array(s), [3]);
}

/** A displacement field [N, 3, z, y, x] (voxels) as grid_sample offsets [N, z, y, x, 3]. */
export function displacementToGridOffset(disp: Tensor): Tensor {
  return torch.tidy(() => disp.permute([0, 2, 3, 4, 1]).mul(voxelToNormalized(disp.shape.slice(2))));
}

/**
 * The sampling grid of x -> theta (x + u(x)) over a fixed grid of `shape`:
 * theta maps the fixed grid's normalized coordinates to the moving image's
 * (a 4x4 or a [3, 4] tensor, the latter differentiable); u is optional.
 */
export function transformGrid(shape: readonly number[], theta: Mat4 | Tensor | null, disp?: Tensor | null): Tensor {
  return torch.tidy(() => {
    let g = identityGrid(shape);
    if (disp) g = g.add(displacementToGridOffset(disp));
    if (theta === null) return g;
    const t = theta instanceof torch.Tensor ? theta : torch.tensor(new Float32Array(theta.slice(0, 12)), [3, 4]);
    const lin = t.narrow(1, 0, 3);
    const off = t.narrow(1, 3, 1).reshape([3]);
    return g.matmul(lin.t()).add(off);
  });
}

export interface WarpOptions {
  mode?: 'bilinear' | 'nearest';
  /** Outside the moving image: 0 (images, labels) or the nearest border value (fields). */
  padding?: 'zeros' | 'border';
}

/** Samples `image` at a grid from transformGrid. */
export function sample(image: Tensor, grid: Tensor, o: WarpOptions = {}): Tensor {
  return F.gridSample(image, grid, { mode: o.mode ?? 'bilinear', paddingMode: o.padding ?? 'zeros', alignCorners: true });
}

/** image(x + u(x)) for an image and a displacement field on the same grid. */
export function warp(image: Tensor, disp: Tensor, o: WarpOptions = {}): Tensor {
  return torch.tidy(() => sample(image, transformGrid(disp.shape.slice(2), null, disp), o));
}

/** The displacement of (x -> x + a(x)) after (x -> x + b(x)): b(x) + a(x + b(x)). */
export function composeDisplacements(a: Tensor, b: Tensor): Tensor {
  return torch.tidy(() => b.add(warp(a, b, { padding: 'border' })));
}

/**
 * exp(v): the displacement of the flow of a stationary velocity field v after
 * unit time, by scaling and squaring: u = v / 2^steps, then `steps` times
 * u <- u o u. The result is a diffeomorphism when v / 2^steps is small.
 */
export function integrateVelocity(v: Tensor, steps = 7): Tensor {
  return torch.tidy(() => {
    let u = v.div(2 ** steps);
    for (let i = 0; i < steps; i++) u = composeDisplacements(u, u);
    return u;
  });
}
