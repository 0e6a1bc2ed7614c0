/**
 * Loads one raw case as the arrays every later stage works on: the image as
 * float32 C-order [C, Z, Y, X] (channel files stacked), the label as uint8
 * [Z, Y, X], and the geometry of the first channel.
 */
import { MedsegIoError } from '../io/errors.ts';
import { readVolume } from '../io/read.ts';
import { voxelCount, type Volume } from '../io/volume.ts';
import { zyxShape, zyxSpacing, type Zyx } from './axes.ts';
import type { DatasetCase } from './dataset.ts';
// The crop helpers live with normalisation (pure, usable in a web page); importers of case.ts keep them here.
export { boxShape, cropArray, nonzeroBox, type Box } from './normalize.ts';

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
