/**
 * Loads one raw case as the arrays every later stage works on: the image as
 * float32 C-order [C, Z, Y, X] (channel files stacked), the label as uint8
 * [Z, Y, X], and the geometry of the first channel. Also the nonzero
 * bounding box nnU-Net crops to.
 */
import { MedsegIoError } from '../io/errors.ts';
import { readVolume } from '../io/read.ts';
import { voxelCount, type Volume } from '../io/volume.ts';
import { zyxShape, zyxSpacing, type Zyx } from './axes.ts';
import type { DatasetCase } from './dataset.ts';

export type Box = [[number, number], [number, number], [number, number]];

export interface RawCaseData {
  id: string;
  image: Float32Array;
  label: Uint8Array | null;
  channels: number;
  shape: Zyx;
  spacing: Zyx;
  geometry: Omit<Volume, 'data'>;
}

export async function loadRawCase(c: DatasetCase, opts: { withLabel?: boolean } = {}): Promise<RawCaseData> {
  const vols: Volume[] = [];
  for (const p of c.imagePaths) vols.push(await readVolume(p));
  const first = vols[0]!;
  const n = voxelCount(first);
  const channels = vols.reduce((s, v) => s + v.channels, 0);
  const image = new Float32Array(channels * n);
  let o = 0;
  for (let i = 0; i < vols.length; i++) {
    const v = vols[i]!;
    if (v.size.some((s, k) => s !== first.size[k])) {
      throw new MedsegIoError('BAD_GEOMETRY', `channel size ${v.size.join('x')} differs from channel 0 (${first.size.join('x')})`, c.imagePaths[i]);
    }
    image.set(v.data as ArrayLike<number>, o);
    o += v.data.length;
  }
  let label: Uint8Array | null = null;
  if (c.labelPath && opts.withLabel !== false) {
    const l = await readVolume(c.labelPath);
    if (l.size.some((s, k) => s !== first.size[k]) || l.channels !== 1) {
      throw new MedsegIoError('BAD_GEOMETRY', `label ${l.size.join('x')}x${l.channels}ch does not match the image ${first.size.join('x')}`, c.labelPath);
    }
    label = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = l.data[i]!;
      if (!(v >= 0 && v <= 255 && Number.isInteger(v))) throw new MedsegIoError('BAD_DATA', `label value ${v} is not a class id 0..255`, c.labelPath);
      label[i] = v;
    }
  }
  const { data: _d, ...geometry } = first;
  return { id: c.id, image, label, channels, shape: zyxShape(first), spacing: zyxSpacing(first), geometry: { ...geometry, channels } };
}

/**
 * Bounding box [start, end) per axis of the voxels nonzero in any channel
 * (nnU-Net's crop_to_nonzero). An all-zero image keeps its full extent.
 */
export function nonzeroBox(image: Float32Array, channels: number, shape: Zyx): Box {
  const [Z, Y, X] = shape;
  const n = Z * Y * X;
  let z0 = Z,
    z1 = -1,
    y0 = Y,
    y1 = -1,
    x0 = X,
    x1 = -1;
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      const row = (z * Y + y) * X;
      for (let x = 0; x < X; x++) {
        let nz = false;
        for (let c = 0; c < channels && !nz; c++) nz = image[c * n + row + x] !== 0;
        if (!nz) continue;
        if (z < z0) z0 = z;
        if (z > z1) z1 = z;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
  }
  if (z1 < 0)
    return [
      [0, Z],
      [0, Y],
      [0, X],
    ];
  return [
    [z0, z1 + 1],
    [y0, y1 + 1],
    [x0, x1 + 1],
  ];
}

/** Copies the box out of a [C, Z, Y, X] array (C = 1 for labels). */
export function cropArray<T extends Float32Array | Uint8Array>(a: T, channels: number, shape: Zyx, box: Box): T {
  const [Z, Y, X] = shape;
  const [[z0, z1], [y0, y1], [x0, x1]] = box;
  const cz = z1 - z0,
    cy = y1 - y0,
    cx = x1 - x0;
  const out = new (a.constructor as new (n: number) => T)(channels * cz * cy * cx);
  let o = 0;
  for (let c = 0; c < channels; c++) {
    for (let z = z0; z < z1; z++) {
      for (let y = y0; y < y1; y++) {
        const s = ((c * Z + z) * Y + y) * X;
        out.set(a.subarray(s + x0, s + x1), o);
        o += cx;
      }
    }
  }
  return out;
}

export function boxShape(box: Box): Zyx {
  return [box[0][1] - box[0][0], box[1][1] - box[1][0], box[2][1] - box[2][0]];
}
