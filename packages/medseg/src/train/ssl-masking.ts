/**
 * Masks for masked image modelling, as float32 arrays [B, ...spatial] of 0/1
 * (1 = hidden from the network, the voxels the reconstruction loss counts).
 * - patchMask: MAE-style, the patch is cut into a grid of `cell`-sized
 *   blocks (the encoder's token grid) and a `ratio` share of them, chosen at
 *   random per sample, is hidden.
 * - cubeMask: inpainting, random cubes of 1/8 to 1/4 of the patch per axis
 *   are hidden until at least `ratio` of the voxels are.
 */
import type { Rng } from '../util/random.ts';

const prod = (a: number[]) => a.reduce((x, y) => x * y, 1);

/** Writes a box [start, end) per axis into one sample's mask. */
function fillBox(m: Float32Array, offset: number, shape: number[], start: number[], end: number[]): number {
  let added = 0;
  const strides = shape.map((_, a) => prod(shape.slice(a + 1)));
  const walk = (a: number, base: number): void => {
    for (let i = start[a]!; i < end[a]!; i++) {
      const o = base + i * strides[a]!;
      if (a === shape.length - 1) {
        if (m[offset + o] === 0) added++;
        m[offset + o] = 1;
      } else walk(a + 1, o);
    }
  };
  walk(0, 0);
  return added;
}

export function patchMask(batch: number, shape: number[], cell: number[], ratio: number, rng: Rng): Float32Array {
  if (!(ratio > 0 && ratio < 1)) throw new RangeError(`mask ratio must be in (0, 1), got ${ratio}`);
  const n = prod(shape);
  const grid = shape.map((s, a) => Math.ceil(s / cell[a]!));
  const cells = prod(grid);
  const hide = Math.max(1, Math.round(ratio * cells));
  const m = new Float32Array(batch * n);
  for (let b = 0; b < batch; b++) {
    // Partial Fisher-Yates: the first `hide` entries are a uniform random subset.
    const order = Array.from({ length: cells }, (_, i) => i);
    for (let i = 0; i < hide; i++) {
      const j = i + rng.int(cells - i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let k = 0; k < hide; k++) {
      let r = order[k]!;
      const idx = new Array<number>(grid.length);
      for (let a = grid.length - 1; a >= 0; a--) {
        idx[a] = r % grid[a]!;
        r = Math.floor(r / grid[a]!);
      }
      const start = idx.map((g, a) => g * cell[a]!);
      fillBox(
        m,
        b * n,
        shape,
        start,
        start.map((s, a) => Math.min(shape[a]!, s + cell[a]!)),
      );
    }
  }
  return m;
}

export function cubeMask(batch: number, shape: number[], ratio: number, rng: Rng): Float32Array {
  if (!(ratio > 0 && ratio < 1)) throw new RangeError(`mask ratio must be in (0, 1), got ${ratio}`);
  const n = prod(shape);
  const m = new Float32Array(batch * n);
  for (let b = 0; b < batch; b++) {
    let hidden = 0;
    while (hidden < ratio * n) {
      const size = shape.map((s) => Math.max(1, Math.round(s * rng.uniform(1 / 8, 1 / 4))));
      const start = shape.map((s, a) => rng.int(s - size[a]! + 1));
      hidden += fillBox(
        m,
        b * n,
        shape,
        start,
        start.map((s0, a) => s0 + size[a]!),
      );
    }
  }
  return m;
}
