/**
 * PNG. The decoder is hand-written because the npm decoders expand every
 * image to 8-bit RGBA: label maps need 16-bit samples and palette indices kept
 * as they are, and every size must be checked against the limits before a
 * buffer is allocated. The encoder is pngjs, which writes gray and RGB at 8
 * and 16 bits from interleaved samples.
 */
import { crc32, inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { MedsegIoError } from './errors.ts';
import { applyPalette, makeVolume, type Image2dOptions } from './image2d-common.ts';
import { checkAllocation, resolveLimits } from './limits.ts';
import { voxelTypeOf, type Volume } from './volume.ts';

export const PNG_SIG = [137, 80, 78, 71, 13, 10, 26, 10];

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
    else if (type === 'IEND') {
      ended = true;
      break;
    }
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
    ? [
        [0, 0, 8, 8],
        [4, 0, 8, 8],
        [0, 4, 4, 8],
        [2, 0, 4, 4],
        [0, 2, 2, 4],
        [1, 0, 2, 2],
        [0, 1, 1, 2],
      ]
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
    if (e instanceof RangeError || /too large|Cannot create a Buffer/i.test(m))
      throw new MedsegIoError('TOO_LARGE', 'PNG data inflates past its declared size', path);
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
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) line[i] = (line[i]! + line[i - bpp]!) & 255;
      return;
    case 2:
      for (let i = 0; i < n; i++) line[i] = (line[i]! + prev[i]!) & 255;
      return;
    case 3:
      for (let i = 0; i < n; i++) line[i] = (line[i]! + (((i >= bpp ? line[i - bpp]! : 0) + prev[i]!) >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? line[i - bpp]! : 0;
        const b = prev[i]!;
        const c = i >= bpp ? prev[i - bpp]! : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a),
          pb = Math.abs(p - b),
          pc = Math.abs(p - c);
        line[i] = (line[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
      }
      return;
    default:
      throw new MedsegIoError('CORRUPT', `PNG row filter ${ft}`, path);
  }
}

/** Interleaved samples of one image: gray (1 channel) or RGB (3), 8 or 16 bits per sample. */
export interface PngPixels {
  width: number;
  height: number;
  channels: 1 | 3;
  /** width * height * channels samples, row 0 first, channels interleaved per pixel. */
  data: Uint8Array | Uint16Array;
}

/** PNG bytes of interleaved gray or RGB samples (pngjs; 16-bit when `data` is a Uint16Array). */
export function encodePngPixels(p: PngPixels): Buffer {
  const { width, height, channels, data } = p;
  if (data.length !== width * height * channels)
    throw new MedsegIoError('BAD_DATA', `PNG of ${width}x${height}x${channels} needs ${width * height * channels} samples, got ${data.length}`);
  const wide = data instanceof Uint16Array;
  const colorType = channels === 3 ? 2 : 0;
  // pngjs reads 16-bit samples in the platform's byte order from the whole underlying ArrayBuffer, so hand it an unshared copy.
  const bytes = wide ? Buffer.from(Uint16Array.from(data).buffer) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const png = { width, height, data: bytes } as PNG;
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: wide ? 16 : 8 });
}

/** PNG of a 2D volume: uint8 / uint16, 1 channel (gray) or 3 (RGB). */
export function encodePng(v: Volume): Buffer {
  const type = voxelTypeOf(v.data);
  if (v.size[2] !== 1) throw new MedsegIoError('UNSUPPORTED', `PNG holds one slice; volume has ${v.size[2]}`);
  if (type !== 'uint8' && type !== 'uint16') throw new MedsegIoError('UNSUPPORTED', `PNG holds uint8/uint16, not ${type}: cast first`);
  if (v.channels !== 1 && v.channels !== 3) throw new MedsegIoError('UNSUPPORTED', `PNG writer takes 1 or 3 channels, not ${v.channels}`);
  const [width, height] = v.size;
  const channels = v.channels;
  const px = width * height;
  const data = type === 'uint16' ? new Uint16Array(px * channels) : new Uint8Array(px * channels);
  // Volume channels are planar; PNG samples are interleaved per pixel.
  for (let i = 0; i < px; i++) for (let c = 0; c < channels; c++) data[i * channels + c] = v.data[c * px + i]!;
  return encodePngPixels({ width, height, channels, data });
}
