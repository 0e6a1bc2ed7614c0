/**
 * Patch sampling as nnU-Net's data loader: a patch is centred on a random
 * foreground voxel (a random class present, then a random stored location of
 * it) with probability oversampleForeground (0.33), else placed uniformly;
 * a case smaller than the patch is padded (image 0, label 0) around it.
 */
import type { PreprocessedCase } from './types.ts';
import type { Rng } from '../util/random.ts';

export interface Patch {
  image: Float32Array;
  label: Uint8Array;
  /** Whether the patch was forced onto foreground. */
  forcedForeground: boolean;
  /** Patch origin in case voxels [z, y, x] (may be negative: padding). */
  start: number[];
}

/** patch: [z, y, x] or [y, x] (2D: one slice of the case, chosen at random / by the foreground voxel). */
export function samplePatch(c: PreprocessedCase, patch: number[], oversample: number, rng: Rng): Patch {
  const d = patch.length;
  const p3 = d === 3 ? patch : [1, ...patch];
  const shape = c.shape;
  const forced = rng.chance(oversample);
  const locs = c.properties.classLocations ?? {};
  const classes = Object.keys(locs).filter((k) => locs[Number(k)]!.length > 0);
  const start = [0, 0, 0];
  let centre: number[] | null = null;
  if (forced && classes.length > 0) {
    const l = locs[Number(classes[rng.int(classes.length)])]!;
    centre = l[rng.int(l.length)]!;
  }
  for (let a = 0; a < 3; a++) {
    const need = Math.max(0, p3[a]! - shape[a]!);
    const lb = -Math.floor(need / 2);
    const ub = shape[a]! + Math.ceil(need / 2) - p3[a]!;
    if (d === 2 && a === 0) start[0] = centre ? centre[0]! : rng.int(shape[0]);
    else if (centre) start[a] = Math.min(ub, Math.max(lb, centre[a]! - Math.floor(p3[a]! / 2)));
    else start[a] = lb + rng.int(ub - lb + 1);
  }
  const [PZ, PY, PX] = p3 as [number, number, number];
  const [Z, Y, X] = shape;
  const C = c.channels;
  const n = Z * Y * X,
    pn = PZ * PY * PX;
  const image = new Float32Array(C * pn);
  const label = new Uint8Array(pn);
  for (let z = 0; z < PZ; z++) {
    const sz = start[0]! + z;
    if (sz < 0 || sz >= Z) continue;
    for (let y = 0; y < PY; y++) {
      const sy = start[1]! + y;
      if (sy < 0 || sy >= Y) continue;
      const x0 = Math.max(0, -start[2]!),
        x1 = Math.min(PX, X - start[2]!);
      if (x1 <= x0) continue;
      const so = (sz * Y + sy) * X + start[2]!;
      const po = (z * PY + y) * PX;
      for (let ch = 0; ch < C; ch++) image.set(c.data.subarray(ch * n + so + x0, ch * n + so + x1), ch * pn + po + x0);
      if (c.label) label.set(c.label.subarray(so + x0, so + x1), po + x0);
    }
  }
  return { image, label, forcedForeground: forced && centre !== null, start: d === 3 ? start : start.slice(1) };
}
