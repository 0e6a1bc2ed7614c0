/**
 * Pixel data decoding, frame by frame, with every size checked before
 * anything is allocated.
 *
 * Supported transfer syntaxes for pixel data:
 *   native: Implicit VR LE (1.2.840.10008.1.2), Explicit VR LE (.1.2.1),
 *           Explicit VR BE (.1.2.2), Deflated Explicit VR LE (.1.2.1.99);
 *   RLE Lossless (.1.2.5) — hand-written, the format is a few lines of PackBits;
 *   through the codecs of codecs.ts / compressed.ts: JPEG baseline and
 *   extended 8- and 12-bit (.4.50, .4.51), JPEG lossless (.4.57, .4.70), JPEG-LS
 *   (.4.80, .4.81), JPEG 2000 (.4.90, .4.91), HTJ2K (.4.201, .4.202, .4.203).
 * Everything else (JPEG XL, MPEG/HEVC video) throws
 * UNSUPPORTED naming the UID.
 *
 * Photometric interpretation: MONOCHROME1 is inverted by the series reader;
 * colour frames come out planar RGB: YBR_FULL and YBR_FULL_422 are converted
 * (JPEG decoders do that for their own frames, native data is converted here);
 * PALETTE COLOR frames come out as stored values, mapped to RGB by the series
 * reader through palette.ts.
 */
import { MedsegIoError, type ReadLimits } from '../errors.ts';
import { checkAllocation } from '../limits.ts';
import type { VoxelArray, VoxelType } from '../volume.ts';
import { COMPRESSED_TRANSFER_SYNTAXES, decodeCompressedFrame } from './compressed.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';
import { TS, type ParsedDicom } from './parse.ts';

export interface PixelInfo {
  rows: number;
  columns: number;
  frames: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  photometric: string;
  planarConfiguration: number;
  /** Output sample type; 'bit' is BitsAllocated 1 (SEG BINARY), unpacked to 0/1 bytes. */
  type: VoxelType | 'bit';
}

const NATIVE = new Set<string>([TS.ImplicitLE, TS.ExplicitLE, TS.ExplicitBE, TS.DeflatedLE]);
export const SUPPORTED_TRANSFER_SYNTAXES = [...NATIVE, TS.Rle, ...COMPRESSED_TRANSFER_SYNTAXES];
const COMPRESSED = new Set(COMPRESSED_TRANSFER_SYNTAXES);

export function pixelInfo(ds: DicomDataset, path?: string): PixelInfo {
  const rows = ds.number(T.Rows);
  const columns = ds.number(T.Columns);
  if (rows === undefined || columns === undefined) throw new MedsegIoError('BAD_DATA', 'image has no Rows/Columns', path);
  const framesRaw = ds.number(T.NumberOfFrames) ?? 1;
  const samplesPerPixel = ds.number(T.SamplesPerPixel) ?? 1;
  const bitsAllocated = ds.number(T.BitsAllocated) ?? (ds.has(T.FloatPixelData) ? 32 : ds.has(T.DoubleFloatPixelData) ? 64 : undefined);
  if (bitsAllocated === undefined) throw new MedsegIoError('BAD_DATA', 'image has no BitsAllocated', path);
  const bitsStored = ds.number(T.BitsStored) ?? bitsAllocated;
  const pixelRepresentation = ds.number(T.PixelRepresentation) ?? 0;
  const frames = Number.isFinite(framesRaw) ? Math.trunc(framesRaw) : NaN;
  if (!(rows >= 1 && columns >= 1 && frames >= 1 && Number.isSafeInteger(frames))) {
    throw new MedsegIoError('BAD_GEOMETRY', `bad image size rows=${rows} columns=${columns} frames=${framesRaw}`, path);
  }
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw new MedsegIoError('UNSUPPORTED', `SamplesPerPixel ${samplesPerPixel}`, path);
  if (!(bitsStored >= 1 && bitsStored <= bitsAllocated))
    throw new MedsegIoError('BAD_DATA', `BitsStored ${bitsStored} with BitsAllocated ${bitsAllocated}`, path);
  let type: PixelInfo['type'];
  const signed = pixelRepresentation === 1;
  if (ds.has(T.FloatPixelData)) type = 'float32';
  else if (ds.has(T.DoubleFloatPixelData)) type = 'float64';
  else if (bitsAllocated === 1) type = 'bit';
  else if (bitsAllocated === 8) type = signed ? 'int8' : 'uint8';
  else if (bitsAllocated === 16) type = signed ? 'int16' : 'uint16';
  else if (bitsAllocated === 32) type = signed ? 'int32' : 'uint32';
  else throw new MedsegIoError('UNSUPPORTED', `BitsAllocated ${bitsAllocated}`, path);
  return {
    rows,
    columns,
    frames,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    type,
    photometric: ds.string(T.PhotometricInterpretation) ?? 'MONOCHROME2',
    planarConfiguration: ds.number(T.PlanarConfiguration) ?? 0,
  };
}

const BYTES: Record<VoxelType, number> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 };

export function sampleBytes(info: PixelInfo): number {
  return info.type === 'bit' ? 1 : BYTES[info.type];
}

/** Rejects a frame set whose decoded size exceeds limits, before any allocation. */
export function checkPixelLimits(info: PixelInfo, limits: ReadLimits, path?: string): void {
  checkAllocation(info.rows * info.columns * info.samplesPerPixel * info.frames, sampleBytes(info), limits, path);
}

/**
 * Decodes every frame of a parsed file. Each returned array is one frame,
 * planar (all of sample 0, then sample 1, ...), x fastest. Colour frames are
 * RGB (see decodedPhotometric). A compressed syntax needs its codec loaded
 * first (codecs.ts loadCodecFor; the async readers do that).
 */
export function decodeFrames(file: ParsedDicom, info: PixelInfo, limits: ReadLimits, path?: string): VoxelArray[] {
  checkPixelLimits(info, limits, path);
  const ds = file.dataset;
  const el = ds.get(T.PixelData) ?? ds.get(T.FloatPixelData) ?? ds.get(T.DoubleFloatPixelData);
  if (!el) throw new MedsegIoError('BAD_DATA', 'no pixel data', path);
  const ts = file.transferSyntaxUID;
  if (!el.fragments) {
    if (!NATIVE.has(ts) && ts !== TS.Rle && !COMPRESSED.has(ts)) unsupported(ts, path);
    return decodeNative(el.bytes, el.littleEndian, info, path).map((f) => toRgb(f, info));
  }
  if (ts !== TS.Rle && !COMPRESSED.has(ts)) unsupported(ts, path);
  if (info.type === 'bit' || info.type.startsWith('float')) throw new MedsegIoError('UNSUPPORTED', `encapsulated ${info.type} pixel data`, path);
  const frames = splitFrames(el.fragments, el.offsetTable, info.frames, path);
  if (ts === TS.Rle) return frames.map((f) => toRgb(decodeRle(f, info, path), info));
  return frames.map((f) => {
    const d = decodeCompressedFrame(ts, f, info, path);
    const samples = toSamples(d.raw, true, { ...info, planarConfiguration: d.interleaved ? 0 : 1 });
    return toRgb(samples, { ...info, photometric: d.photometric });
  });
}

/** The photometric interpretation of decodeFrames' output for a file. */
export function decodedPhotometric(info: PixelInfo): string {
  return info.samplesPerPixel === 3 || info.photometric === 'PALETTE COLOR' ? 'RGB' : info.photometric;
}

/** For native (not encapsulated) pixel data: TRUNCATED unless the element holds every frame the header announces. */
export function checkNativeLength(file: ParsedDicom, info: PixelInfo, path?: string): void {
  const el = file.dataset.get(T.PixelData) ?? file.dataset.get(T.FloatPixelData) ?? file.dataset.get(T.DoubleFloatPixelData);
  if (!el || el.fragments) {
    if (el?.fragments && info.frames > 1 && el.fragments.length < info.frames && !(el.offsetTable && el.offsetTable.length >= 4 * info.frames)) {
      throw new MedsegIoError('BAD_DATA', `${info.frames} frames announced, ${el.fragments.length} fragments present`, path);
    }
    return;
  }
  const n = info.rows * info.columns * info.samplesPerPixel * info.frames;
  const need = info.type === 'bit' ? Math.ceil(n / 8) : is422(info) ? (n / 3) * 2 : n * sampleBytes(info);
  if (el.bytes.length < need) throw new MedsegIoError('TRUNCATED', `pixel data has ${el.bytes.length} bytes, ${need} needed for ${info.frames} frame(s)`, path);
}

function unsupported(ts: string, path?: string): never {
  throw new MedsegIoError(
    'UNSUPPORTED',
    `transfer syntax ${ts} is not supported (supported: ${SUPPORTED_TRANSFER_SYNTAXES.join(', ')}); convert with e.g. dcmdjpeg/gdcmconv --raw`,
    path,
  );
}

function frameSamples(info: PixelInfo): number {
  return info.rows * info.columns * info.samplesPerPixel;
}

export function decodeNative(bytes: Uint8Array, littleEndian: boolean, info: PixelInfo, path?: string): VoxelArray[] {
  const n = frameSamples(info);
  const out: VoxelArray[] = [];
  if (info.type === 'bit') {
    // Bit-packed, LSB first, frames continue mid-byte (no padding between frames).
    const need = Math.ceil((n * info.frames) / 8);
    if (bytes.length < need) throw new MedsegIoError('TRUNCATED', `pixel data has ${bytes.length} bytes, ${need} needed`, path);
    for (let f = 0; f < info.frames; f++) {
      const a = new Uint8Array(n);
      let bit = f * n;
      for (let i = 0; i < n; i++, bit++) a[i] = (bytes[bit >>> 3]! >>> (bit & 7)) & 1;
      out.push(a);
    }
    return out;
  }
  const bpp = BYTES[info.type];
  if (is422(info)) return decodeNative422(bytes, info, path);
  const need = n * bpp * info.frames;
  if (bytes.length < need) throw new MedsegIoError('TRUNCATED', `pixel data has ${bytes.length} bytes, ${need} needed`, path);
  for (let f = 0; f < info.frames; f++) {
    out.push(toSamples(bytes.subarray(f * n * bpp, (f + 1) * n * bpp), littleEndian, info));
  }
  return out;
}

/** Raw frame bytes -> typed samples, planar, with BitsStored masking / sign extension. */
function toSamples(raw: Uint8Array, littleEndian: boolean, info: PixelInfo): VoxelArray {
  const type = info.type as VoxelType;
  const bpp = BYTES[type];
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  if (!littleEndian && bpp > 1) {
    for (let i = 0; i < copy.length; i += bpp) copy.subarray(i, i + bpp).reverse();
  }
  let arr: VoxelArray;
  switch (type) {
    case 'uint8':
      arr = copy;
      break;
    case 'int8':
      arr = new Int8Array(copy.buffer);
      break;
    case 'uint16':
      arr = new Uint16Array(copy.buffer);
      break;
    case 'int16':
      arr = new Int16Array(copy.buffer);
      break;
    case 'uint32':
      arr = new Uint32Array(copy.buffer);
      break;
    case 'int32':
      arr = new Int32Array(copy.buffer);
      break;
    case 'float32':
      arr = new Float32Array(copy.buffer);
      break;
    default:
      arr = new Float64Array(copy.buffer);
      break;
  }
  if (!type.startsWith('float') && info.bitsStored < info.bitsAllocated) maskBits(arr, info);
  if (info.samplesPerPixel === 3 && info.planarConfiguration === 0) arr = deinterleave(arr, info.rows * info.columns);
  return arr;
}

/** Keeps BitsStored bits (high bits may hold overlays or garbage); sign-extends signed data. */
function maskBits(a: VoxelArray, info: PixelInfo): void {
  const bits = info.bitsStored;
  const mask = bits >= 32 ? 0xffffffff : (1 << bits) - 1;
  const signBit = 2 ** (bits - 1);
  const signed = info.pixelRepresentation === 1;
  for (let i = 0; i < a.length; i++) {
    let v = (a[i]! & mask) >>> 0;
    if (signed && v >= signBit) v -= 2 * signBit;
    a[i] = v;
  }
}

function deinterleave(a: VoxelArray, pixels: number): VoxelArray {
  const out = new (a.constructor as new (n: number) => VoxelArray)(a.length);
  for (let p = 0; p < pixels; p++) {
    out[p] = a[3 * p]!;
    out[pixels + p] = a[3 * p + 1]!;
    out[2 * pixels + p] = a[3 * p + 2]!;
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts);
}

/** Groups encapsulated fragments into frames (one fragment per frame, the offset table, or all-in-one for one frame). */
function splitFrames(fragments: Uint8Array[], offsetTable: Uint8Array | undefined, frames: number, path?: string): Uint8Array[] {
  if (fragments.length === 0) throw new MedsegIoError('BAD_DATA', 'encapsulated pixel data has no fragments', path);
  if (frames === 1) return [concat(fragments)];
  if (fragments.length === frames) return fragments;
  if (offsetTable && offsetTable.length >= 4 * frames) {
    const dv = new DataView(offsetTable.buffer, offsetTable.byteOffset, offsetTable.byteLength);
    const starts: number[] = [];
    for (let i = 0; i < frames; i++) starts.push(dv.getUint32(4 * i, true));
    // Map byte offsets (counted over item headers + fragments) to fragment indices.
    const fragStart: number[] = [];
    let off = 0;
    for (const f of fragments) {
      fragStart.push(off);
      off += 8 + f.length;
    }
    const out: Uint8Array[] = [];
    for (let i = 0; i < frames; i++) {
      const a = fragStart.indexOf(starts[i]!);
      const b = i + 1 < frames ? fragStart.indexOf(starts[i + 1]!) : fragments.length;
      if (a < 0 || b < 0 || b <= a) throw new MedsegIoError('CORRUPT', 'basic offset table does not match the fragments', path);
      out.push(concat(fragments.slice(a, b)));
    }
    return out;
  }
  throw new MedsegIoError('UNSUPPORTED', `${fragments.length} fragments for ${frames} frames and no offset table`, path);
}

/** RLE Lossless (PS3.5 Annex G): one PackBits segment per byte plane, most significant byte first. */
export function decodeRle(frame: Uint8Array, info: PixelInfo, path?: string): VoxelArray {
  if (info.type === 'bit' || info.type.startsWith('float')) throw new MedsegIoError('UNSUPPORTED', 'RLE of this pixel type', path);
  if (frame.length < 64) throw new MedsegIoError('TRUNCATED', 'RLE frame shorter than its 64-byte header', path);
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const nseg = dv.getUint32(0, true);
  const bpp = BYTES[info.type as VoxelType];
  const spp = info.samplesPerPixel;
  if (nseg !== bpp * spp) throw new MedsegIoError('CORRUPT', `RLE has ${nseg} segments, expected ${bpp * spp}`, path);
  const pixels = info.rows * info.columns;
  const raw = new Uint8Array(pixels * bpp * spp); // little-endian, planar by sample
  for (let s = 0; s < nseg; s++) {
    const start = dv.getUint32(4 + 4 * s, true);
    const end = s + 1 < nseg ? dv.getUint32(8 + 4 * s, true) : frame.length;
    if (start < 64 || end > frame.length || end < start) throw new MedsegIoError('CORRUPT', 'RLE segment offsets out of range', path);
    const sample = Math.floor(s / bpp);
    const byteIndex = bpp - 1 - (s % bpp); // segment 0 holds the most significant byte
    const plane = unpackBits(frame.subarray(start, end), pixels, path);
    const base = sample * pixels * bpp;
    for (let p = 0; p < pixels; p++) raw[base + p * bpp + byteIndex] = plane[p]!;
  }
  return toSamples(raw, true, { ...info, planarConfiguration: 1 });
}

function unpackBits(src: Uint8Array, n: number, path?: string): Uint8Array {
  const out = new Uint8Array(n);
  let i = 0;
  let o = 0;
  while (o < n && i < src.length) {
    const h = src[i++]!;
    if (h < 128) {
      const cnt = h + 1;
      if (i + cnt > src.length || o + cnt > n) throw new MedsegIoError('CORRUPT', 'RLE literal run past the end', path);
      out.set(src.subarray(i, i + cnt), o);
      i += cnt;
      o += cnt;
    } else if (h > 128) {
      const cnt = 257 - h;
      if (i >= src.length || o + cnt > n) throw new MedsegIoError('CORRUPT', 'RLE repeat run past the end', path);
      out.fill(src[i++]!, o, o + cnt);
      o += cnt;
    }
  }
  if (o < n) throw new MedsegIoError('TRUNCATED', `RLE segment decodes to ${o} of ${n} bytes`, path);
  return out;
}

/** Native YBR_FULL_422: two horizontal pixels share one Cb and one Cr (Y1 Y2 Cb Cr), 8-bit only. */
function is422(info: PixelInfo): boolean {
  return info.photometric === 'YBR_FULL_422' && info.samplesPerPixel === 3 && info.type !== 'bit';
}

function decodeNative422(bytes: Uint8Array, info: PixelInfo, path?: string): VoxelArray[] {
  if (info.bitsAllocated !== 8) throw new MedsegIoError('UNSUPPORTED', `native YBR_FULL_422 with BitsAllocated ${info.bitsAllocated}`, path);
  if (info.columns % 2) throw new MedsegIoError('BAD_DATA', `native YBR_FULL_422 with an odd number of columns (${info.columns})`, path);
  const pixels = info.rows * info.columns;
  const need = pixels * 2 * info.frames;
  if (bytes.length < need) throw new MedsegIoError('TRUNCATED', `pixel data has ${bytes.length} bytes, ${need} needed`, path);
  const out: VoxelArray[] = [];
  for (let f = 0; f < info.frames; f++) {
    const src = bytes.subarray(f * pixels * 2);
    const a = new Uint8Array(3 * pixels);
    for (let p = 0; p < pixels; p += 2) {
      const o = 2 * p;
      const cb = src[o + 2]!;
      const cr = src[o + 3]!;
      a[p] = src[o]!;
      a[p + 1] = src[o + 1]!;
      a[pixels + p] = a[pixels + p + 1] = cb;
      a[2 * pixels + p] = a[2 * pixels + p + 1] = cr;
    }
    out.push(a);
  }
  return out;
}

/**
 * Planar YBR_FULL / YBR_FULL_422 samples -> RGB (PS3.3 C.7.6.3.1.2), rounded
 * and clamped to the stored range; other interpretations are returned as they are.
 */
function toRgb(a: VoxelArray, info: PixelInfo): VoxelArray {
  if (info.samplesPerPixel !== 3 || (info.photometric !== 'YBR_FULL' && info.photometric !== 'YBR_FULL_422')) return a;
  if (info.type.startsWith('float') || info.pixelRepresentation === 1) return a;
  const pixels = info.rows * info.columns;
  const max = 2 ** info.bitsStored - 1;
  const mid = 2 ** (info.bitsStored - 1);
  const out = new (a.constructor as new (n: number) => VoxelArray)(a.length);
  const clamp = (v: number) => (v < 0 ? 0 : v > max ? max : Math.round(v));
  for (let p = 0; p < pixels; p++) {
    const y = a[p]!;
    const cb = a[pixels + p]! - mid;
    const cr = a[2 * pixels + p]! - mid;
    out[p] = clamp(y + 1.402 * cr);
    out[pixels + p] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    out[2 * pixels + p] = clamp(y + 1.772 * cb);
  }
  return out;
}
