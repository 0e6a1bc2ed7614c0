/**
 * Thick-slice acquisition simulated from a thin-slice volume: groups of k
 * consecutive slices along one axis averaged into one ([nz, ny, nx] arrays,
 * x fastest). The axis is first cut to a multiple of k (the trailing slices
 * dropped), so that the thick volume zoomed back by k has the cut volume's
 * shape.
 */
import type { VolumeAxis } from '../plan/enhance-settings.ts';

/** The shape of a volume array, [nz, ny, nx]. */
export type Shape3 = [number, number, number];

/** A volume's values, x fastest, and its shape. */
export interface Array3 {
  data: Float32Array;
  shape: Shape3;
}

/** The first floor(n / k) k slices along `axis`. */
export function cropToMultiple(data: ArrayLike<number>, shape: Readonly<Shape3>, axis: VolumeAxis, k: number): Array3 {
  const outShape = [...shape] as Shape3;
  outShape[axis] = Math.floor(shape[axis] / k) * k;
  if (outShape[axis] === 0) throw new RangeError(`axis ${axis} has ${shape[axis]} slices, fewer than the factor ${k}`);
  const out = new Float32Array(outShape[0] * outShape[1] * outShape[2]);
  for (let z = 0; z < outShape[0]; z++) {
    for (let y = 0; y < outShape[1]; y++) {
      const from = (z * shape[1] + y) * shape[2];
      const to = (z * outShape[1] + y) * outShape[2];
      for (let x = 0; x < outShape[2]; x++) out[to + x] = data[from + x]!;
    }
  }
  return { data: out, shape: outShape };
}

/** Averages of k consecutive slices along `axis` (whose length must be a multiple of k). */
export function thickSlices(data: ArrayLike<number>, shape: Readonly<Shape3>, axis: VolumeAxis, k: number): Array3 {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`slice factor must be a positive integer, got ${k}`);
  if (shape[axis] % k !== 0) throw new RangeError(`axis ${axis} has ${shape[axis]} slices, not a multiple of ${k}`);
  const outShape = [...shape] as Shape3;
  outShape[axis] = shape[axis] / k;
  const out = new Float32Array(outShape[0] * outShape[1] * outShape[2]);
  const stride = [shape[1] * shape[2], shape[2], 1][axis]!;
  for (let z = 0; z < outShape[0]; z++) {
    for (let y = 0; y < outShape[1]; y++) {
      for (let x = 0; x < outShape[2]; x++) {
        const p = [z, y, x];
        p[axis] = p[axis]! * k;
        const base = (p[0]! * shape[1] + p[1]!) * shape[2] + p[2]!;
        let s = 0;
        for (let j = 0; j < k; j++) s += data[base + j * stride]!;
        out[(z * outShape[1] + y) * outShape[2] + x] = s / k;
      }
    }
  }
  return { data: out, shape: outShape };
}
