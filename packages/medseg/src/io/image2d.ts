/**
 * 2D image formats -> Volume (size [w, h, 1], channels 1 or 3, spacing 1,
 * origin 0, identity direction; x = column, y = row with row 0 at y = 0).
 *
 * JPEG (jpeg-js) and TIFF (utif2) use npm decoders. PNG, GIF and BMP are
 * hand-written because the libraries expand everything to RGBA: label maps
 * need 16-bit samples and palette indices kept as they are, and every size
 * must be checked against the limits before a buffer is allocated.
 *
 * Channels: alpha is dropped. A palette image whose palette is all gray
 * gives the gray levels (1 channel); any other palette image gives the
 * palette indices (1 channel: label maps saved with a colour table), unless
 * opts.palette = 'rgb'. 1/2/4-bit samples are returned unscaled (0..2^b-1).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import UTIF from 'utif2';
import { MedsegIoError } from './errors.ts';
import { checkAllocation, fsError, resolveLimits, type ReadOptions } from './limits.ts';
import { IDENTITY3, voxelTypeOf, type Volume, type VoxelArray } from './volume.ts';

export interface Image2dOptions extends ReadOptions {
  path?: string;
  /** 'auto' (default): gray palettes -> gray levels, colour palettes -> indices. */
  palette?: 'auto' | 'index' | 'rgb';
}

function makeVolume(data: VoxelArray, w: number, h: number, channels: number, format: string, path?: string): Volume {
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
function applyPalette(idx: Uint8Array, pal: Uint8Array, w: number, h: number, mode: Image2dOptions['palette'], format: string, path?: string): Volume {
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

// ---------------------------------------------------------------- PNG

const PNG_SIG = [137, 80, 78, 71, 13, 10, 26, 10];

export function decodePng(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  if (buf.length < 8 || !PNG_SIG.every((b, i) => buf[i] === b)) throw new MedsegIoError('BAD_MAGIC', 'not a PNG file', path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let ihdr: { w: number; h: number; depth: number; ct: number; interlace: number } | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos + 8 <= buf.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!, buf[pos + 6]!, buf[pos + 7]!);
    if (pos + 12 + len > buf.length) throw new MedsegIoError('TRUNCATED', `PNG chunk ${type} runs past the end of the file`, path);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (crc32(buf.subarray(pos + 4, pos + 8 + len)) !== dv.getUint32(pos + 8 + len)) {
      throw new MedsegIoError('CORRUPT', `PNG chunk ${type} fails its CRC`, path);
    }
    pos += 12 + len;
    if (type === 'IHDR') {
      if (len < 13) throw new MedsegIoError('CORRUPT', 'short IHDR', path);
      const b = new DataView(body.buffer, body.byteOffset, body.byteLength);
      ihdr = { w: b.getUint32(0), h: b.getUint32(4), depth: body[8]!, ct: body[9]!, interlace: body[12]! };
    } else if (type === 'PLTE') palette = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') { ended = true; break; }
  }
  if (!ihdr) throw new MedsegIoError('TRUNCATED', 'PNG has no IHDR', path);
  if (!ended && idat.length === 0) throw new MedsegIoError('TRUNCATED', 'PNG has no image data', path);
  const { w, h, depth, ct, interlace } = ihdr;
  const samples = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[ct as 0 | 2 | 3 | 4 | 6];
  const okDepth = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] }[ct as 0 | 2 | 3 | 4 | 6];
  if (!samples || !okDepth!.includes(depth)) throw new MedsegIoError('CORRUPT', `PNG color type ${ct} with bit depth ${depth} is invalid`, path);
  if (interlace > 1) throw new MedsegIoError('CORRUPT', `PNG interlace method ${interlace}`, path);
  if (w < 1 || h < 1) throw new MedsegIoError('BAD_DATA', `PNG size ${w}x${h}`, path);
  if (ct === 3 && !palette) throw new MedsegIoError('CORRUPT', 'palette PNG without PLTE', path);
  checkAllocation(w * h, samples * Math.max(1, depth / 8), limits, path);
  // Adam7 passes (or one full pass)
  const passes = interlace
    ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
    : [[0, 0, 1, 1]];
  const bitsPP = samples * depth;
  const bpp = Math.max(1, bitsPP >> 3);
  let expected = 0;
  const dims = passes.map(([x0, y0, dx, dy]) => {
    const pw = Math.ceil((w - x0!) / dx!);
    const ph = Math.ceil((h - y0!) / dy!);
    const stride = Math.ceil((pw * bitsPP) / 8);
    if (pw > 0 && ph > 0) expected += ph * (stride + 1);
    return { pw, ph, stride };
  });
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 1024 });
  } catch (e) {
    const m = (e as Error).message;
    if (e instanceof RangeError || /too large|Cannot create a Buffer/i.test(m)) throw new MedsegIoError('TOO_LARGE', 'PNG data inflates past its declared size', path);
    if (/unexpected end/i.test(m)) throw new MedsegIoError('TRUNCATED', 'PNG data stream ends early', path);
    throw new MedsegIoError('CORRUPT', `PNG data: ${m}`, path);
  }
  if (raw.length < expected) throw new MedsegIoError('TRUNCATED', `PNG data has ${raw.length} bytes, ${expected} expected`, path);
  // unfiltered samples as numbers in a w*h*samples interleaved array
  const wide = depth === 16;
  const inter = wide ? new Uint16Array(w * h * samples) : new Uint8Array(w * h * samples);
  let off = 0;
  passes.forEach(([x0, y0, dx, dy], p) => {
    const { pw, ph, stride } = dims[p]!;
    if (pw <= 0 || ph <= 0) return;
    let prev: Uint8Array = new Uint8Array(stride);
    for (let r = 0; r < ph; r++) {
      const ft = raw[off]!;
      const line = raw.subarray(off + 1, off + 1 + stride);
      off += stride + 1;
      unfilter(ft, line, prev, bpp, path);
      const y = y0! + r * dy!;
      for (let c = 0; c < pw; c++) {
        const x = x0! + c * dx!;
        const o = (y * w + x) * samples;
        for (let s = 0; s < samples; s++) {
          let v: number;
          if (depth === 16) v = (line[(c * samples + s) * 2]! << 8) | line[(c * samples + s) * 2 + 1]!;
          else if (depth === 8) v = line[c * samples + s]!;
          else {
            const bit = (c * samples + s) * depth;
            v = (line[bit >> 3]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
          }
          inter[o + s] = v;
        }
      }
      prev = line;
    }
  });
  const px = w * h;
  if (ct === 3) return applyPalette(inter as Uint8Array, palette!.subarray(0, palette!.length - (palette!.length % 3)), w, h, opts.palette, 'png', path);
  const outCh = ct === 2 || ct === 6 ? 3 : 1;
  const out = wide ? new Uint16Array(px * outCh) : new Uint8Array(px * outCh);
  for (let i = 0; i < px; i++) for (let c = 0; c < outCh; c++) out[c * px + i] = inter[i * samples + c]!;
  return makeVolume(out, w, h, outCh, 'png', path);
}

function unfilter(ft: number, line: Uint8Array, prev: Uint8Array, bpp: number, path?: string): void {
  const n = line.length;
  switch (ft) {
    case 0: return;
    case 1: for (let i = bpp; i < n; i++) line[i] = (line[i]! + line[i - bpp]!) & 255; return;
    case 2: for (let i = 0; i < n; i++) line[i] = (line[i]! + prev[i]!) & 255; return;
    case 3:
      for (let i = 0; i < n; i++) line[i] = (line[i]! + (((i >= bpp ? line[i - bpp]! : 0) + prev[i]!) >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? line[i - bpp]! : 0;
        const b = prev[i]!;
        const c = i >= bpp ? prev[i - bpp]! : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        line[i] = (line[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
      }
      return;
    default:
      throw new MedsegIoError('CORRUPT', `PNG row filter ${ft}`, path);
  }
}

/** PNG of a 2D volume: uint8 / uint16, 1 channel (gray) or 3 (RGB). */
export function encodePng(v: Volume): Buffer {
  const type = voxelTypeOf(v.data);
  if (v.size[2] !== 1) throw new MedsegIoError('UNSUPPORTED', `PNG holds one slice; volume has ${v.size[2]}`);
  if (type !== 'uint8' && type !== 'uint16') throw new MedsegIoError('UNSUPPORTED', `PNG holds uint8/uint16, not ${type}: cast first`);
  if (v.channels !== 1 && v.channels !== 3) throw new MedsegIoError('UNSUPPORTED', `PNG writer takes 1 or 3 channels, not ${v.channels}`);
  const [w, h] = v.size;
  const px = w * h;
  const bps = type === 'uint16' ? 2 : 1;
  const stride = w * v.channels * bps;
  const raw = Buffer.alloc(h * (stride + 1));
  for (let y = 0; y < h; y++) {
    let o = y * (stride + 1) + 1; // filter 0
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < v.channels; c++) {
        const val = v.data[c * px + y * w + x]!;
        if (bps === 2) { raw[o++] = val >> 8; raw[o++] = val & 255; } else raw[o++] = val;
      }
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = bps * 8;
  ihdr[9] = v.channels === 3 ? 2 : 0;
  return Buffer.concat([Buffer.from(PNG_SIG), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---------------------------------------------------------------- GIF

export function decodeGif(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const sig = Buffer.from(buf.subarray(0, 6)).toString('latin1');
  if (sig !== 'GIF87a' && sig !== 'GIF89a') throw new MedsegIoError('BAD_MAGIC', 'not a GIF file', path);
  if (buf.length < 13) throw new MedsegIoError('TRUNCATED', 'GIF header cut short', path);
  const u16 = (o: number) => buf[o]! | (buf[o + 1]! << 8);
  const W = u16(6), H = u16(8), flags = buf[10]!, bg = buf[11]!;
  if (W < 1 || H < 1) throw new MedsegIoError('BAD_DATA', `GIF size ${W}x${H}`, path);
  checkAllocation(W * H, 1, limits, path);
  let pos = 13;
  let gct: Uint8Array | undefined;
  const need = (n: number) => { if (pos + n > buf.length) throw new MedsegIoError('TRUNCATED', 'GIF ends early', path); };
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
    if (b === 0x21) { need(1); pos++; skipSubBlocks(); continue; }
    if (b === 0x3b) throw new MedsegIoError('BAD_DATA', 'GIF has no image', path);
    if (b !== 0x2c) throw new MedsegIoError('CORRUPT', `GIF block 0x${b.toString(16)}`, path);
    need(9);
    const left = u16(pos), top = u16(pos + 2), fw = u16(pos + 4), fh = u16(pos + 6), f = buf[pos + 8]!;
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
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]] as const) for (let y = start; y < h; y += step) rows.push(y);
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
  let bits = 0, acc = 0, p = 0, o = 0;
  for (let i = 0; i < clear; i++) { suffix[i] = i; first[i] = i; prefix[i] = -1; }
  while (o < count) {
    while (bits < size) {
      if (p >= data.length) throw new MedsegIoError('TRUNCATED', `GIF image data ends after ${o} of ${count} pixels`, path);
      acc |= data[p++]! << bits;
      bits += 8;
    }
    const code = acc & ((1 << size) - 1);
    acc >>>= size;
    bits -= size;
    if (code === clear) { size = minCode + 1; next = eoi + 1; old = -1; continue; }
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
    if (code === next) { stack[sp++] = first[old]!; c = old; }
    while (c >= clear) { stack[sp++] = suffix[c]!; c = prefix[c]!; }
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

// ---------------------------------------------------------------- BMP

export function decodeBmp(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  if (buf.length < 2 || buf[0] !== 0x42 || buf[1] !== 0x4d) throw new MedsegIoError('BAD_MAGIC', 'not a BMP file', path);
  if (buf.length < 26) throw new MedsegIoError('TRUNCATED', 'BMP header cut short', path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dataOff = dv.getUint32(10, true);
  const hsize = dv.getUint32(14, true);
  let w: number, h: number, bpp: number, comp = 0, ncolors = 0;
  if (hsize === 12) {
    w = dv.getUint16(18, true); h = dv.getInt16(20, true); bpp = dv.getUint16(24, true);
  } else if (hsize >= 40) {
    if (buf.length < 54) throw new MedsegIoError('TRUNCATED', 'BMP header cut short', path);
    w = dv.getInt32(18, true); h = dv.getInt32(22, true); bpp = dv.getUint16(28, true);
    comp = dv.getUint32(30, true); ncolors = dv.getUint32(46, true);
  } else throw new MedsegIoError('CORRUPT', `BMP header size ${hsize}`, path);
  const topDown = h < 0;
  h = Math.abs(h);
  if (w < 1 || h < 1) throw new MedsegIoError('BAD_DATA', `BMP size ${w}x${h}`, path);
  if (![1, 4, 8, 24, 32].includes(bpp)) throw new MedsegIoError('UNSUPPORTED', `BMP with ${bpp} bits per pixel`, path);
  if (comp !== 0 && !(comp === 3 && bpp === 32)) throw new MedsegIoError('UNSUPPORTED', `compressed BMP (method ${comp})`, path);
  checkAllocation(w * h, bpp > 8 ? 3 : 1, limits, path);
  const stride = Math.ceil((w * bpp) / 32) * 4;
  if (dataOff + stride * h > buf.length) throw new MedsegIoError('TRUNCATED', 'BMP pixel data cut short', path);
  const px = w * h;
  const row = (y: number) => dataOff + (topDown ? y : h - 1 - y) * stride;
  if (bpp <= 8) {
    const n = ncolors || 1 << bpp;
    const entry = hsize === 12 ? 3 : 4;
    const palOff = 14 + hsize;
    if (n > 256 || palOff + n * entry > buf.length) throw new MedsegIoError('CORRUPT', 'BMP palette is invalid', path);
    const pal = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) pal[i * 3 + c] = buf[palOff + i * entry + 2 - c]!; // BGR -> RGB
    const idx = new Uint8Array(px);
    for (let y = 0; y < h; y++) {
      const r = row(y);
      for (let x = 0; x < w; x++) {
        const bit = x * bpp;
        idx[y * w + x] = (buf[r + (bit >> 3)]! >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
      }
    }
    return applyPalette(idx, pal, w, h, opts.palette, 'bmp', path);
  }
  if (comp === 3) {
    const masks = [dv.getUint32(54, true), dv.getUint32(58, true), dv.getUint32(62, true)];
    if (masks[0] !== 0xff0000 || masks[1] !== 0xff00 || masks[2] !== 0xff) throw new MedsegIoError('UNSUPPORTED', 'BMP with non-standard bit fields', path);
  }
  const out = new Uint8Array(px * 3);
  const B = bpp / 8;
  for (let y = 0; y < h; y++) {
    const r = row(y);
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[c * px + y * w + x] = buf[r + x * B + 2 - c]!;
  }
  return makeVolume(out, w, h, 3, 'bmp', path);
}

// ---------------------------------------------------------------- JPEG

function jpegComponents(buf: Uint8Array): number {
  let p = 2;
  while (p + 9 < buf.length) {
    if (buf[p] !== 0xff) { p++; continue; }
    const m = buf[p + 1]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return buf[p + 9]!;
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) { p += m === 0xff ? 1 : 2; continue; }
    p += 2 + ((buf[p + 2]! << 8) | buf[p + 3]!);
  }
  return 3;
}

export function decodeJpeg(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  if (buf.length < 3 || buf[0] !== 0xff || buf[1] !== 0xd8) throw new MedsegIoError('BAD_MAGIC', 'not a JPEG file', path);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(buf, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: limits.maxBytes / 3 / 1e6,
      maxMemoryUsageInMB: Math.max(16, (limits.maxBytes * 2) / 2 ** 20),
    });
  } catch (e) {
    const m = (e as Error).message ?? String(e);
    if (/limit exceeded/.test(m)) throw new MedsegIoError('TOO_LARGE', `JPEG: ${m}`, path);
    throw new MedsegIoError('CORRUPT', `JPEG: ${m}`, path);
  }
  const { width: w, height: h } = img;
  const px = w * h;
  if (!(px > 0) || img.data.length < px * 3) throw new MedsegIoError('CORRUPT', 'JPEG decoded to no pixels', path);
  const ch = jpegComponents(buf) === 1 ? 1 : 3;
  const out = new Uint8Array(px * ch);
  for (let i = 0; i < px; i++) for (let c = 0; c < ch; c++) out[c * px + i] = img.data[i * 3 + c]!;
  return makeVolume(out, w, h, ch, 'jpeg', path);
}

// ---------------------------------------------------------------- TIFF

export function decodeTiff(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const le = buf[0] === 0x49 && buf[1] === 0x49 && buf[2] === 42 && buf[3] === 0;
  const be = buf[0] === 0x4d && buf[1] === 0x4d && buf[2] === 0 && buf[3] === 42;
  if (!le && !be) throw new MedsegIoError('BAD_MAGIC', 'not a TIFF file', path);
  validateTiffDirectories(buf, le, path);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  let ifd: UTIF.IFD;
  try {
    const ifds = UTIF.decode(ab);
    if (!ifds.length) throw new MedsegIoError('CORRUPT', 'TIFF has no image directory', path);
    ifd = ifds[0]!;
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    throw new MedsegIoError('CORRUPT', `TIFF: ${(e as Error).message ?? String(e)}`, path);
  }
  const tag = (t: number, d: number) => {
    const v = ifd[`t${t}`] as number[] | undefined;
    return v && typeof v[0] === 'number' ? v[0] : d;
  };
  const w = tag(256, 0), h = tag(257, 0), bps = tag(258, 1), spp = tag(277, 1), photo = tag(262, 1);
  const planar = tag(284, 1), fmt = tag(339, 1);
  if (ifd.t256 === undefined || ifd.t257 === undefined) throw new MedsegIoError('CORRUPT', 'TIFF directory has no image width/length', path);
  if (!(w >= 1 && h >= 1 && Number.isSafeInteger(w) && Number.isSafeInteger(h))) throw new MedsegIoError('BAD_DATA', `TIFF size ${w}x${h}`, path);
  if (![1, 8, 16].includes(bps) || fmt !== 1) throw new MedsegIoError('UNSUPPORTED', `TIFF with ${bps}-bit samples of format ${fmt} (1/8/16-bit unsigned are supported)`, path);
  if (![1, 2, 3].includes(photo)) throw new MedsegIoError('UNSUPPORTED', `TIFF photometric interpretation ${photo}`, path);
  if (spp < 1 || spp > 4 || (planar !== 1 && spp > 1)) throw new MedsegIoError('UNSUPPORTED', `TIFF with ${spp} samples, planar config ${planar}`, path);
  checkAllocation(w * h, spp * Math.max(1, bps / 8) * 2, limits, path);
  try {
    UTIF.decodeImage(ab, ifd);
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `TIFF: ${(e as Error).message ?? String(e)}`, path);
  }
  const raw = ifd.data as Uint8Array | undefined;
  const px = w * h;
  const rowBytes = Math.ceil((w * spp * bps) / 8);
  if (!raw || raw.length < rowBytes * h) throw new MedsegIoError('TRUNCATED', 'TIFF pixel data is shorter than the image', path);
  const outCh = photo === 2 ? 3 : 1;
  if (photo === 2 && spp < 3) throw new MedsegIoError('CORRUPT', 'RGB TIFF with fewer than 3 samples', path);
  const out = bps === 16 ? new Uint16Array(px * outCh) : new Uint8Array(px * outCh);
  for (let y = 0; y < h; y++) {
    const r = y * rowBytes;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < outCh; c++) {
        const s = x * spp + c;
        let v: number;
        if (bps === 8) v = raw[r + s]!;
        else if (bps === 16) v = raw[r + 2 * s]! | (raw[r + 2 * s + 1]! << 8); // utif2 hands 16-bit samples back little-endian
        else v = (raw[r + (s >> 3)]! >> (7 - (s & 7))) & 1;
        out[c * px + y * w + x] = v;
      }
    }
  }
  if (photo === 3) {
    const cmap = ifd.t320 as number[] | undefined;
    const n = 1 << bps;
    if (!cmap || cmap.length < 3 * n || bps === 16) throw new MedsegIoError('CORRUPT', 'palette TIFF without a usable colour map', path);
    const pal = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) pal[i * 3 + c] = cmap[c * n + i]! >> 8;
    return applyPalette(out as Uint8Array, pal, w, h, opts.palette, 'tiff', path);
  }
  return makeVolume(out, w, h, outCh, 'tiff', path);
}

const TIFF_TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];
const TIFF_SUB_IFD_TAGS = new Set([330, 34665, 34853, 40965]);

/**
 * utif2 trusts the directory: a corrupt entry count or value count makes it
 * loop and allocate for as long as the number says, and a cyclic IFD chain
 * never ends. Walk every directory it would visit first and reject anything
 * that does not fit inside the file.
 */
function validateTiffDirectories(buf: Uint8Array, le: boolean, path?: string): void {
  if (buf.length < 8) throw new MedsegIoError('TRUNCATED', 'TIFF header cut short', path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const seen = new Set<number>();
  const queue = [dv.getUint32(4, le)];
  while (queue.length) {
    const off = queue.shift()!;
    if (off === 0) continue;
    if (seen.has(off) || seen.size > 64) throw new MedsegIoError('CORRUPT', 'TIFF directory chain loops or is too long', path);
    seen.add(off);
    if (off + 2 > buf.length) throw new MedsegIoError('TRUNCATED', 'TIFF directory offset past the end of the file', path);
    const n = dv.getUint16(off, le);
    if (off + 2 + 12 * n + 4 > buf.length) throw new MedsegIoError('TRUNCATED', 'TIFF directory runs past the end of the file', path);
    for (let i = 0; i < n; i++) {
      const e = off + 2 + 12 * i;
      const tag = dv.getUint16(e, le);
      const type = dv.getUint16(e + 2, le);
      const count = dv.getUint32(e + 4, le);
      const size = TIFF_TYPE_BYTES[type];
      if (!size) throw new MedsegIoError('CORRUPT', `TIFF tag ${tag} has unknown type ${type}`, path);
      const bytes = size * count;
      if (bytes > 4) {
        const at = dv.getUint32(e + 8, le);
        if (at + bytes > buf.length) throw new MedsegIoError('TRUNCATED', `TIFF tag ${tag} values run past the end of the file`, path);
      }
      if (TIFF_SUB_IFD_TAGS.has(tag) && (type === 4 || type === 13)) {
        const at = bytes > 4 ? dv.getUint32(e + 8, le) : e + 8;
        for (let k = 0; k < Math.min(count, 64); k++) queue.push(dv.getUint32(at + 4 * k, le));
      }
    }
    queue.push(dv.getUint32(off + 2 + 12 * n, le));
  }
}

// ---------------------------------------------------------------- dispatch

export type Image2dFormat = 'png' | 'jpeg' | 'tiff' | 'bmp' | 'gif';

export function sniffImage2d(buf: Uint8Array): Image2dFormat | undefined {
  if (PNG_SIG.every((b, i) => buf[i] === b)) return 'png';
  if (buf[0] === 0xff && buf[1] === 0xd8) return 'jpeg';
  if ((buf[0] === 0x49 && buf[1] === 0x49 && buf[2] === 42) || (buf[0] === 0x4d && buf[1] === 0x4d && buf[3] === 42)) return 'tiff';
  if (buf[0] === 0x42 && buf[1] === 0x4d) return 'bmp';
  if (buf[0] === 0x47 && buf[1] === 0x49 && buf[2] === 0x46) return 'gif';
  return undefined;
}

export function decodeImage2d(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const f = sniffImage2d(buf);
  try {
    switch (f) {
      case 'png': return decodePng(buf, opts);
      case 'jpeg': return decodeJpeg(buf, opts);
      case 'tiff': return decodeTiff(buf, opts);
      case 'bmp': return decodeBmp(buf, opts);
      case 'gif': return decodeGif(buf, opts);
      default: throw new MedsegIoError('BAD_MAGIC', 'not a PNG, JPEG, TIFF, BMP or GIF file', opts.path);
    }
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    // a decoder tripping over corrupt input (index past the end, ...) is a corrupt file
    throw new MedsegIoError('CORRUPT', `${f}: ${(e as Error)?.message ?? String(e)}`, opts.path);
  }
}

export async function readImage2d(path: string, opts: Omit<Image2dOptions, 'path'> = {}): Promise<Volume> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  return decodeImage2d(buf, { ...opts, path });
}

export async function writePng(path: string, v: Volume): Promise<void> {
  await writeFile(path, encodePng(v));
}
