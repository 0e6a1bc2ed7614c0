/**
 * The training material of an enhancement model and its batches. Volumes are
 * [nz, ny, nx] float arrays normalised by their 99th-percentile foreground
 * intensity. Per task:
 * - supervised denoising: the clean volume is the target, and every batch
 *   draws fresh Rician noise at the model's level for its input;
 * - Noise2Void: the (noisy) volume is both input and target; in each patch
 *   a fraction of the voxels (the blind spots) takes the value of a random
 *   in-plane neighbour within ±2 voxels, and the loss is taken at those
 *   voxels only, so the network cannot learn the identity;
 * - super-resolution: the target is the volume cut to a multiple of the
 *   factor, the input its thick slices zoomed back by cubic B-splines.
 * A batch is a pure function of (seed, epoch, iteration), so a resumed run
 * draws the batches the interrupted one would have.
 */
import { Rng, mixSeed } from '../util/random.ts';
import { zoomAxis } from './bspline-zoom.ts';
import { sliceAxis, type EnhanceSettings } from '../plan/enhance-settings.ts';
import { addRicianNoise, foregroundScale } from './rician.ts';
import { cropToMultiple, thickSlices, type Shape3 } from './thick-slices.ts';

export type { Shape3 };

export interface EnhanceVolume {
  /** The network's input (SR: the interpolated thick slices; denoising: the clean or noisy image). */
  input: Float32Array;
  /** The target (SR, supervised denoising), or null (Noise2Void: the input is the target). */
  target: Float32Array | null;
  shape: Shape3;
}

export interface EnhanceBatch {
  input: Float32Array;
  target: Float32Array;
  /** 1 where the loss is taken (Noise2Void's blind spots), else null: everywhere. */
  mask: Float32Array | null;
  /** [N, 1, ...patch]. */
  shape: number[];
}

/** Share of a patch's voxels that Noise2Void masks. */
export const BLIND_SPOT_FRACTION = 0.01;

/** A volume's values divided by its 99th-percentile foreground intensity, and that scale. */
export function normalise(data: ArrayLike<number>): { data: Float32Array; scale: number } {
  const scale = foregroundScale(data);
  return { data: Float32Array.from(data, (v) => v / scale), scale };
}

/**
 * The training material of one volume (raw intensities, [nz, ny, nx]).
 * Noise2Void with a noise level adds that noise once, seeded by `seed`: the
 * noisy acquisition the model learns from.
 */
export function prepareVolume(data: ArrayLike<number>, shape: Shape3, s: EnhanceSettings, seed: number): EnhanceVolume {
  const n = normalise(data).data;
  if (s.task === 'sr') {
    const cut = cropToMultiple(n, shape, s.axis, s.factor);
    const thick = thickSlices(cut.data, cut.shape, s.axis, s.factor);
    return { input: zoomAxis(thick.data, thick.shape, s.axis, s.factor).data, target: cut.data, shape: cut.shape };
  }
  if (s.selfSupervised) return { input: s.noise > 0 ? addRicianNoise(n, s.noise, seed) : n, target: null, shape: [...shape] };
  return { input: n, target: n, shape: [...shape] };
}

/** The [bz, by, bx] box at `origin` of a volume, zero outside it. */
export function extractBox(data: Float32Array, shape: Shape3, origin: Shape3, box: Shape3): Float32Array {
  const out = new Float32Array(box[0] * box[1] * box[2]);
  for (let z = 0; z < box[0]; z++) {
    const sz = origin[0] + z;
    if (sz < 0 || sz >= shape[0]) continue;
    for (let y = 0; y < box[1]; y++) {
      const sy = origin[1] + y;
      if (sy < 0 || sy >= shape[1]) continue;
      for (let x = 0; x < box[2]; x++) {
        const sx = origin[2] + x;
        if (sx < 0 || sx >= shape[2]) continue;
        out[(z * box[1] + y) * box[2] + x] = data[(sz * shape[1] + sy) * shape[2] + sx]!;
      }
    }
  }
  return out;
}

/** The 3D box a patch occupies: the patch itself (3D) or one plane of it across the slice axis (2D). */
export function patchBox(s: Pick<EnhanceSettings, 'dims' | 'patch' | 'task' | 'axis'>): Shape3 {
  if (s.dims === 3) return [...s.patch] as Shape3;
  const box = [...s.patch];
  box.splice(sliceAxis(s), 0, 1);
  return box as Shape3;
}

/**
 * Noise2Void's blind spots in a box: `count` distinct voxels, each replaced in
 * `input` by a random neighbour within ±2 voxels along the box's axes of
 * length > 1 (never itself, clamped to the box). Returns the mask.
 */
export function maskBlindSpots(input: Float32Array, box: Shape3, count: number, rng: Rng): Float32Array {
  const mask = new Float32Array(input.length);
  const original = Float32Array.from(input);
  const axes = [0, 1, 2].filter((a) => box[a]! > 1);
  let placed = 0;
  while (placed < count) {
    const i = rng.int(input.length);
    if (mask[i]) continue;
    const p = [Math.floor(i / (box[1] * box[2])), Math.floor(i / box[2]) % box[1], i % box[2]];
    const q = [...p];
    do {
      for (const a of axes) q[a] = Math.min(box[a]! - 1, Math.max(0, p[a]! + rng.int(5) - 2));
    } while (q.every((v, a) => v === p[a]));
    input[i] = original[(q[0]! * box[1] + q[1]!) * box[2] + q[2]!]!;
    mask[i] = 1;
    placed++;
  }
  return mask;
}

/** The batch of (seed, epoch, iteration): `size` patches at random places of random volumes. */
export function sampleBatch(volumes: readonly EnhanceVolume[], s: EnhanceSettings, size: number, seed: number, epoch: number, iteration: number): EnhanceBatch {
  if (volumes.length === 0) throw new RangeError('no training volumes');
  const rng = new Rng(mixSeed(seed, epoch, iteration));
  const box = patchBox(s);
  const voxels = box[0] * box[1] * box[2];
  const input = new Float32Array(size * voxels);
  const target = new Float32Array(size * voxels);
  const mask = s.task === 'denoise' && s.selfSupervised ? new Float32Array(size * voxels) : null;
  for (let b = 0; b < size; b++) {
    const v = volumes[rng.int(volumes.length)]!;
    const origin = box.map((len, a) => rng.int(Math.max(1, v.shape[a]! - len + 1))) as Shape3;
    const x = extractBox(v.input, v.shape, origin, box);
    if (s.task === 'sr') {
      input.set(x, b * voxels);
      target.set(extractBox(v.target!, v.shape, origin, box), b * voxels);
    } else if (mask) {
      target.set(x, b * voxels);
      const m = maskBlindSpots(x, box, Math.max(1, Math.round(BLIND_SPOT_FRACTION * voxels)), rng);
      input.set(x, b * voxels);
      mask.set(m, b * voxels);
    } else {
      target.set(x, b * voxels);
      input.set(addRicianNoise(x, s.noise, rng.u32()), b * voxels);
    }
  }
  return { input, target, mask, shape: [size, 1, ...s.patch] };
}
