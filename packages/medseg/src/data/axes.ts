/**
 * The axis-order convention at the boundary between a Volume and the arrays
 * the network sees. A Volume lists its axes x first: `size` [X, Y, Z],
 * `spacing` [x, y, z] (io/volume.ts). Preprocessed arrays, patches and
 * tensors list them z first: shape [Z, Y, X], spacing [z, y, x]. The voxels
 * are in the same memory order either way (x fastest); only the listing is
 * reversed, and these functions are the one place that reverses it.
 */
import type { Volume } from '../io/volume.ts';

/** A per-axis triple listed z first: [Z, Y, X] or [z, y, x]. */
export type Zyx = [number, number, number];
/** A per-axis triple listed x first, as a Volume's size and spacing are. */
export type Xyz = [number, number, number];

/** [x, y, z] -> [z, y, x]. */
export function zyxFromXyz(a: Readonly<Xyz>): Zyx {
  return [a[2], a[1], a[0]];
}

/** [z, y, x] -> [x, y, z]. */
export function xyzFromZyx(a: Readonly<Zyx>): Xyz {
  return [a[2], a[1], a[0]];
}

/** A Volume's size as an array shape [Z, Y, X]. */
export function zyxShape(v: Pick<Volume, 'size'>): Zyx {
  return zyxFromXyz(v.size);
}

/** A Volume's spacing as [z, y, x]. */
export function zyxSpacing(v: Pick<Volume, 'spacing'>): Zyx {
  return zyxFromXyz(v.spacing);
}
