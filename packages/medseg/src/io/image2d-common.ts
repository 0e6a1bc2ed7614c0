/**
 * What the 2D codecs share: the Volume they return (size [w, h, 1], channels
 * 1 or 3, spacing 1, origin 0, identity direction; x = column, y = row with
 * row 0 at y = 0) and the palette rule.
 *
 * Channels: alpha is dropped. A palette image whose palette is all gray
 * gives the gray levels (1 channel); any other palette image gives the
 * palette indices (1 channel: label maps saved with a colour table), unless
 * opts.palette = 'rgb'. 1/2/4-bit samples are returned unscaled (0..2^b-1).
 */
import { MedsegIoError } from './errors.ts';
import type { ReadOptions } from './limits.ts';
import { IDENTITY3, type Volume, type VoxelArray } from './volume.ts';

export interface Image2dOptions extends ReadOptions {
  path?: string;
  /** 'auto' (default): gray palettes -> gray levels, colour palettes -> indices. */
  palette?: 'auto' | 'index' | 'rgb';
}

export function makeVolume(data: VoxelArray, w: number, h: number, channels: number, format: string, path?: string): Volume {
  return {
    data,
    size: [w, h, 1],
    channels,
    spacing: [1, 1, 1],
    origin: [0, 0, 0],
    direction: [...IDENTITY3],
    meta: { sourcePath: path, extra: { format } },
  };
}

/** Palette (n x RGB) applied to indices per the module's palette rule. */
export function applyPalette(idx: Uint8Array, pal: Uint8Array, w: number, h: number, mode: Image2dOptions['palette'], format: string, path?: string): Volume {
  const n = pal.length / 3;
  const gray = Array.from({ length: n }, (_, i) => pal[3 * i] === pal[3 * i + 1] && pal[3 * i] === pal[3 * i + 2]).every(Boolean);
  const px = w * h;
  for (let i = 0; i < px; i++) if (idx[i]! >= n) throw new MedsegIoError('CORRUPT', `palette index ${idx[i]} past the ${n}-entry palette`, path);
  if ((mode ?? 'auto') === 'index' || (mode !== 'rgb' && !gray)) return makeVolume(idx, w, h, 1, format, path);
  if (mode !== 'rgb') {
    const out = new Uint8Array(px);
    for (let i = 0; i < px; i++) out[i] = pal[3 * idx[i]!]!;
    return makeVolume(out, w, h, 1, format, path);
  }
  const out = new Uint8Array(px * 3);
  for (let i = 0; i < px; i++) for (let c = 0; c < 3; c++) out[c * px + i] = pal[3 * idx[i]! + c]!;
  return makeVolume(out, w, h, 3, format, path);
}
