/**
 * The spatial augmentation's grid sampling through libtorch's grid_sample,
 * for use in the main thread (the loader's workers use the pure-JS sampler,
 * which the tests check against this one).
 */
import * as torch from '@medseg/torch';
import type { GridSampler } from '../data/augment.ts';

export const torchGridSampler: GridSampler = (src, C, shape, coords, mode) =>
  torch.tidy(() => {
    const d = shape.length;
    const n = coords.length / d;
    // voxel (z, y, x) -> normalised (x, y, z) in [-1, 1], align_corners = false
    const g = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let a = 0; a < d; a++) g[i * d + (d - 1 - a)] = (2 * coords[i * d + a]! + 1) / shape[a]! - 1;
    const x = torch.tensor(src, [1, C, ...shape]);
    const grid = torch.tensor(g, [1, ...shape, d]);
    const out = torch.F.gridSample(x, grid, { mode: mode === 'linear' ? 'bilinear' : 'nearest', paddingMode: 'zeros', alignCorners: false });
    return out.toTypedArray() as Float32Array;
  });
