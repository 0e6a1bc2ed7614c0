/** GIF (first frame), hand-written so palette indices stay indices and sizes are checked before allocating. */
import { MedsegIoError } from './errors.ts';
import { applyPalette, type Image2dOptions } from './image2d-common.ts';
import { checkAllocation, resolveLimits } from './limits.ts';
import type { Volume } from './volume.ts';

export function decodeGif(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const sig = Buffer.from(buf.subarray(0, 6)).toString('latin1');
  if (sig !== 'GIF87a' && sig !== 'GIF89a') throw new MedsegIoError('BAD_MAGIC', 'not a GIF file', path);
  if (buf.length < 13) throw new MedsegIoError('TRUNCATED', 'GIF header cut short', path);
  const u16 = (o: number) => buf[o]! | (buf[o + 1]! << 8);
  const W = u16(6),
    H = u16(8),
    flags = buf[10]!,
    bg = buf[11]!;
  if (W < 1 || H < 1) throw new MedsegIoError('BAD_DATA', `GIF size ${W}x${H}`, path);
  checkAllocation(W * H, 1, limits, path);
  let pos = 13;
  let gct: Uint8Array | undefined;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new MedsegIoError('TRUNCATED', 'GIF ends early', path);
  };
  if (flags & 0x80) {
    const n = 3 * (1 << ((flags & 7) + 1));
    need(n);
    gct = buf.subarray(pos, pos + n);
    pos += n;
  }
  const skipSubBlocks = () => {
    for (;;) {
      need(1);
      const n = buf[pos++]!;
      if (n === 0) return;
      need(n);
      pos += n;
    }
  };
  for (;;) {
    need(1);
    const b = buf[pos++]!;
    if (b === 0x21) {
      need(1);
      pos++;
      skipSubBlocks();
      continue;
    }
    if (b === 0x3b) throw new MedsegIoError('BAD_DATA', 'GIF has no image', path);
    if (b !== 0x2c) throw new MedsegIoError('CORRUPT', `GIF block 0x${b.toString(16)}`, path);
    need(9);
    const left = u16(pos),
      top = u16(pos + 2),
      fw = u16(pos + 4),
      fh = u16(pos + 6),
      f = buf[pos + 8]!;
    pos += 9;
    let pal = gct;
    if (f & 0x80) {
      const n = 3 * (1 << ((f & 7) + 1));
      need(n);
      pal = buf.subarray(pos, pos + n);
      pos += n;
    }
    if (!pal) throw new MedsegIoError('CORRUPT', 'GIF image without a colour table', path);
    need(1);
    const minCode = buf[pos++]!;
    if (minCode < 2 || minCode > 11) throw new MedsegIoError('CORRUPT', `GIF LZW minimum code size ${minCode}`, path);
    // gather sub-blocks
    const parts: Uint8Array[] = [];
    for (;;) {
      need(1);
      const n = buf[pos++]!;
      if (n === 0) break;
      need(n);
      parts.push(buf.subarray(pos, pos + n));
      pos += n;
    }
    const pixels = lzwDecode(Buffer.concat(parts), minCode, fw * fh, path);
    const canvas = new Uint8Array(W * H).fill(bg < pal.length / 3 ? bg : 0);
    const rows = f & 0x40 ? interlacedRows(fh) : Array.from({ length: fh }, (_, i) => i);
    for (let r = 0; r < fh; r++) {
      const y = top + rows[r]!;
      if (y >= H) continue;
      for (let x = 0; x < fw; x++) if (left + x < W) canvas[y * W + left + x] = pixels[r * fw + x]!;
    }
    return applyPalette(canvas, pal, W, H, opts.palette, 'gif', path);
  }
}

function interlacedRows(h: number): number[] {
  const rows: number[] = [];
  for (const [start, step] of [
    [0, 8],
    [4, 8],
    [2, 4],
    [1, 2],
  ] as const)
    for (let y = start; y < h; y += step) rows.push(y);
  return rows;
}

function lzwDecode(data: Uint8Array, minCode: number, count: number, path?: string): Uint8Array {
  const out = new Uint8Array(count);
  const clear = 1 << minCode;
  const eoi = clear + 1;
  const prefix = new Int16Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const stack = new Uint8Array(4097);
  let size = minCode + 1;
  let next = eoi + 1;
  let old = -1;
  let bits = 0,
    acc = 0,
    p = 0,
    o = 0;
  for (let i = 0; i < clear; i++) {
    suffix[i] = i;
    first[i] = i;
    prefix[i] = -1;
  }
  while (o < count) {
    while (bits < size) {
      if (p >= data.length) throw new MedsegIoError('TRUNCATED', `GIF image data ends after ${o} of ${count} pixels`, path);
      acc |= data[p++]! << bits;
      bits += 8;
    }
    const code = acc & ((1 << size) - 1);
    acc >>>= size;
    bits -= size;
    if (code === clear) {
      size = minCode + 1;
      next = eoi + 1;
      old = -1;
      continue;
    }
    if (code === eoi) break;
    let c = code;
    let sp = 0;
    if (old === -1) {
      if (code >= clear) throw new MedsegIoError('CORRUPT', 'GIF LZW code before any literal', path);
      out[o++] = code;
      old = code;
      continue;
    }
    if (code > next || (code >= clear && code <= eoi)) throw new MedsegIoError('CORRUPT', `GIF LZW code ${code} out of range`, path);
    if (code === next) {
      stack[sp++] = first[old]!;
      c = old;
    }
    while (c >= clear) {
      stack[sp++] = suffix[c]!;
      c = prefix[c]!;
    }
    stack[sp++] = c;
    if (next < 4096) {
      prefix[next] = old;
      suffix[next] = c;
      first[next] = first[old]!;
      next++;
      if (next === 1 << size && size < 12) size++;
    }
    while (sp > 0 && o < count) out[o++] = stack[--sp]!;
    old = code;
  }
  if (o < count) throw new MedsegIoError('TRUNCATED', `GIF image data ends after ${o} of ${count} pixels`, path);
  return out;
}
