/**
 * One compressed frame -> raw little-endian samples of BitsAllocated width,
 * through the codecs of codecs.ts. Before any codec runs, the frame's own
 * header (JPEG / JPEG-LS SOF, JPEG 2000 / HTJ2K SIZ) is read here and checked
 * against Rows, Columns, SamplesPerPixel and BitsAllocated, so a hostile
 * codestream cannot make a decoder allocate more than the DICOM header (already
 * checked against the read limits) announces. Every failure inside a codec
 * becomes MedsegIoError CORRUPT naming the codec.
 */
import { MedsegIoError } from '../errors.ts';
import { codecFor, dcmtkCodecs, discardCodec, losslessJpegDecoder, wasmDecoder, type EmscriptenCodec, type WasmDecoder } from './codecs.ts';
import { TS } from './parse.ts';

/** What decodeFrames needs from the DICOM header (a subset of PixelInfo). */
export interface FrameGeometry {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  photometric: string;
}

export interface DecodedFrame {
  /** Samples as little-endian integers of BitsAllocated / 8 bytes each. */
  raw: Uint8Array;
  /** Colour samples pixel-interleaved (R G B R G B ...) rather than planar. */
  interleaved: boolean;
  /** Photometric interpretation of the decoded samples (a JPEG decoder turns YBR into RGB). */
  photometric: string;
}

export interface CodestreamHeader {
  width: number;
  height: number;
  components: number;
  precision: number;
  signed?: boolean;
}

/** Tiles a JPEG 2000 codestream may have before it is refused (512² in 1×1 tiles would be 262 144). */
const MAX_TILES = 65_536;

function corrupt(msg: string, path?: string): never {
  throw new MedsegIoError('CORRUPT', msg, path);
}

/** SOF of a JPEG (any process) or JPEG-LS (SOF55) stream, reading marker segments up to the first scan. */
export function jpegHeader(b: Uint8Array, path?: string): CodestreamHeader & { sof: number } {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) corrupt('JPEG frame does not start with SOI', path);
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) corrupt(`JPEG marker expected at byte ${p}`, path);
    const m = b[p + 1]!;
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p += 2;
      continue;
    }
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    if (len < 2 || p + 2 + len > b.length) corrupt(`JPEG segment ${m.toString(16)} of ${len} bytes runs past the frame`, path);
    const isSof = (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7;
    if (isSof) {
      if (len < 8) corrupt('JPEG SOF segment too short', path);
      const precision = b[p + 4]!;
      const height = (b[p + 5]! << 8) | b[p + 6]!;
      const width = (b[p + 7]! << 8) | b[p + 8]!;
      const components = b[p + 9]!;
      return { width, height, components, precision, sof: m };
    }
    if (m === 0xda || m === 0xd9) break;
    p += 2 + len;
  }
  corrupt('JPEG frame has no SOF segment before its first scan', path);
}

/** SIZ of a JPEG 2000 / HTJ2K codestream (bare, or inside a JP2 file). */
export function j2kHeader(b: Uint8Array, path?: string): CodestreamHeader {
  let p = -1;
  const n = Math.min(b.length - 4, 1 << 16);
  for (let i = 0; i <= n; i++) {
    if (b[i] === 0xff && b[i + 1] === 0x4f && b[i + 2] === 0xff && b[i + 3] === 0x51) {
      p = i + 2;
      break;
    }
  }
  if (p < 0) corrupt('JPEG 2000 frame has no SOC + SIZ marker', path);
  if (p + 40 > b.length) corrupt('JPEG 2000 SIZ marker cut short', path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const lsiz = dv.getUint16(p + 2);
  const xsiz = dv.getUint32(p + 6);
  const ysiz = dv.getUint32(p + 10);
  const xo = dv.getUint32(p + 14);
  const yo = dv.getUint32(p + 18);
  const xt = dv.getUint32(p + 22);
  const yt = dv.getUint32(p + 26);
  const xto = dv.getUint32(p + 30);
  const yto = dv.getUint32(p + 34);
  const components = dv.getUint16(p + 38);
  if (components < 1 || lsiz !== 38 + 3 * components || p + 2 + lsiz > b.length) corrupt(`JPEG 2000 SIZ with ${components} components is malformed`, path);
  if (xsiz <= xo || ysiz <= yo || xt === 0 || yt === 0 || xto > xo || yto > yo) corrupt('JPEG 2000 SIZ has an empty image or bad tiling', path);
  const tiles = Math.ceil((xsiz - xto) / xt) * Math.ceil((ysiz - yto) / yt);
  if (tiles > MAX_TILES) corrupt(`JPEG 2000 codestream has ${tiles} tiles (more than ${MAX_TILES})`, path);
  const ssiz = b[p + 40]!;
  for (let c = 0; c < components; c++) {
    const q = p + 40 + 3 * c;
    if (b[q] !== ssiz) throw new MedsegIoError('UNSUPPORTED', 'JPEG 2000 components of different precision', path);
    if (b[q + 1] !== 1 || b[q + 2] !== 1) throw new MedsegIoError('UNSUPPORTED', 'JPEG 2000 with subsampled components', path);
  }
  return { width: xsiz - xo, height: ysiz - yo, components, precision: (ssiz & 0x7f) + 1, signed: (ssiz & 0x80) !== 0 };
}

function checkHeader(h: CodestreamHeader, g: FrameGeometry, what: string, path?: string): void {
  if (h.width !== g.columns || h.height !== g.rows || h.components !== g.samplesPerPixel) {
    throw new MedsegIoError(
      'BAD_DATA',
      `${what} frame is ${h.width}x${h.height} with ${h.components} component(s), the DICOM header says ${g.columns}x${g.rows} with ${g.samplesPerPixel}`,
      path,
    );
  }
  if (!(h.precision >= 1 && h.precision <= 16) || h.precision > g.bitsAllocated) {
    throw new MedsegIoError('BAD_DATA', `${what} precision ${h.precision} bits does not fit BitsAllocated ${g.bitsAllocated}`, path);
  }
}

/** Copies `src` samples (`srcBytes` wide, little-endian) into a new buffer of `dstBytes` wide samples. */
function resample(src: Uint8Array, srcBytes: number, dstBytes: number, count: number, what: string, path?: string): Uint8Array {
  if (src.length < count * srcBytes) corrupt(`${what} decoded ${src.length} bytes, ${count * srcBytes} expected`, path);
  if (srcBytes === dstBytes) return Uint8Array.from(src.subarray(0, count * srcBytes));
  const out = new Uint8Array(count * dstBytes);
  if (srcBytes === 1 && dstBytes === 2) {
    for (let i = 0; i < count; i++) out[2 * i] = src[i]!;
  } else if (srcBytes === 2 && dstBytes === 1) {
    for (let i = 0; i < count; i++) {
      if (src[2 * i + 1] !== 0) corrupt(`${what} decoded a sample above 8 bits into BitsAllocated 8`, path);
      out[i] = src[2 * i]!;
    }
  } else {
    throw new MedsegIoError('UNSUPPORTED', `${what}: ${srcBytes * 8}-bit samples into BitsAllocated ${dstBytes * 8}`, path);
  }
  return out;
}

/** Runs a WebAssembly decoder on one frame; the decoder is always deleted, a trapped instance discarded. */
function runWasm(name: EmscriptenCodec, frame: Uint8Array, path: string | undefined, use: (d: WasmDecoder) => DecodedFrame): DecodedFrame {
  const d = wasmDecoder(name, path);
  try {
    d.getEncodedBuffer(frame.length).set(frame);
    d.decode();
    return use(d);
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    if ((e instanceof Error && e.name === 'RuntimeError') || /abort/i.test(describe(e))) discardCodec(name);
    throw new MedsegIoError('CORRUPT', `${name} cannot decode the frame: ${describe(e)}`, path);
  } finally {
    try {
      d.delete();
    } catch {
      discardCodec(name); // a trapped instance cannot free; the next file gets a fresh one
    }
  }
}

function describe(e: unknown): string {
  if (typeof e === 'number') return `native exception ${e}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

function widthOf(bits: number): number {
  return bits <= 8 ? 1 : 2;
}

/**
 * The frame with its end marker (JPEG EOI / JPEG 2000 EOC, both FF D9) after
 * any even-length padding; a frame cut short gets one appended, as libjpeg
 * itself does on a premature end. Without it CharLS reads on past the data
 * for seconds before failing (measured: 16-30 s for a 34x52 frame).
 */
function withEndMarker(frame: Uint8Array): Uint8Array {
  let end = frame.length;
  while (end > 2 && frame[end - 1] === 0 && frame.length - end < 8) end--;
  if (frame[end - 2] === 0xff && frame[end - 1] === 0xd9) return frame;
  const out = new Uint8Array(frame.length + 2);
  out.set(frame);
  out[frame.length] = 0xff;
  out[frame.length + 1] = 0xd9;
  return out;
}

/** Decodes one frame of a compressed transfer syntax. Codecs must have been loaded (loadCodecFor). */
export function decodeCompressedFrame(ts: string, encoded: Uint8Array, g: FrameGeometry, path?: string): DecodedFrame {
  const name = codecFor(ts);
  const frame = withEndMarker(encoded);
  if (!name) throw new MedsegIoError('UNSUPPORTED', `no decoder for transfer syntax ${ts}`, path);
  if (g.bitsAllocated !== 8 && g.bitsAllocated !== 16) {
    throw new MedsegIoError('UNSUPPORTED', `compressed pixel data with BitsAllocated ${g.bitsAllocated}`, path);
  }
  const outBytes = g.bitsAllocated / 8;
  const count = g.rows * g.columns * g.samplesPerPixel;
  const colour = g.samplesPerPixel > 1;

  if (name === 'charls') {
    const h = jpegHeader(frame, path);
    if (h.sof !== 0xf7) corrupt('JPEG-LS transfer syntax but the frame is not JPEG-LS (no SOF55)', path);
    checkHeader(h, g, 'JPEG-LS', path);
    return runWasm(name, frame, path, (d) => {
      const info = d.getFrameInfo();
      const raw = resample(d.getDecodedBuffer(), widthOf(info.bitsPerSample), outBytes, count, 'CharLS', path);
      // CharLS writes interleave mode 0 (one scan per component) planar, and both line- (1) and
      // sample-interleaved (2) streams pixel-interleaved (checked on dcmcjpls +in / +il / +is files).
      const mode = colour ? (d.getInterleaveMode?.() ?? 2) : 0;
      return { raw, interleaved: mode !== 0, photometric: g.photometric };
    });
  }
  if (name === 'openjpeg' || name === 'openjph') {
    const h = j2kHeader(frame, path);
    checkHeader(h, g, name === 'openjpeg' ? 'JPEG 2000' : 'HTJ2K', path);
    return runWasm(name, frame, path, (d) => {
      const info = d.getFrameInfo();
      const raw = resample(d.getDecodedBuffer(), widthOf(info.bitsPerSample), outBytes, count, name, path);
      // A multi-component transform (YBR_RCT / YBR_ICT) is undone by the decoder: the samples are RGB.
      const photometric = colour && /^YBR_(RCT|ICT)$/.test(g.photometric) ? 'RGB' : g.photometric;
      return { raw, interleaved: colour, photometric };
    });
  }
  if (name === 'libjpeg-turbo') {
    const h = jpegHeader(frame, path);
    if (h.sof !== 0xc0 && h.sof !== 0xc1 && h.sof !== 0xc2) {
      throw new MedsegIoError('UNSUPPORTED', `JPEG process with SOF ${h.sof.toString(16)} in transfer syntax ${ts}`, path);
    }
    checkHeader(h, g, 'JPEG', path);
    if (h.precision === 12) return decodeJpeg12(frame, g, count, path);
    if (h.precision !== 8) throw new MedsegIoError('UNSUPPORTED', `${h.precision}-bit DCT JPEG (DICOM allows 8 or 12)`, path);
    return runWasm(name, frame, path, (d) => {
      const raw = resample(d.getDecodedBuffer(), 1, outBytes, count, 'libjpeg-turbo', path);
      // libjpeg converts YCbCr to RGB for three-component frames.
      return { raw, interleaved: colour, photometric: colour && g.photometric.startsWith('YBR') ? 'RGB' : g.photometric };
    });
  }
  // JPEG lossless, process 14 (plain JavaScript decoder).
  const h = jpegHeader(frame, path);
  if (h.sof !== 0xc3) throw new MedsegIoError('UNSUPPORTED', `JPEG lossless transfer syntax but SOF ${h.sof.toString(16)} (not process 14)`, path);
  checkHeader(h, g, 'JPEG lossless', path);
  const dec = losslessJpegDecoder(path);
  let out: ArrayBuffer;
  try {
    const copy = Uint8Array.from(frame);
    out = dec.decompress(copy.buffer, 0, copy.length);
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `JPEG lossless frame does not decode: ${describe(e)}`, path);
  }
  if (dec.xDim !== g.columns || dec.yDim !== g.rows || dec.numComp !== g.samplesPerPixel) corrupt('JPEG lossless decoder returned another size', path);
  const bytes = dec.numBytes === 1 ? 1 : 2;
  return { raw: resample(new Uint8Array(out), bytes, outBytes, count, 'JPEG lossless', path), interleaved: colour, photometric: g.photometric };
}

/**
 * A 12-bit DCT frame (extended process 4) through DCMTK's 12-bit IJG build in
 * dcmjs-codecs: 16-bit little-endian samples out. Colour is refused: a 12-bit
 * colour DCT frame has no tool here to make or check one with.
 */
function decodeJpeg12(frame: Uint8Array, g: FrameGeometry, count: number, path?: string): DecodedFrame {
  if (g.samplesPerPixel !== 1) throw new MedsegIoError('UNSUPPORTED', '12-bit DCT JPEG with more than one sample per pixel', path);
  const { NativeCodecs, Context } = dcmtkCodecs(path);
  const context = new Context({
    width: g.columns,
    height: g.rows,
    bitsAllocated: 16,
    bitsStored: 12,
    samplesPerPixel: 1,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    photometricInterpretation: 'MONOCHROME2',
    encodedBuffer: frame,
  });
  let decoded: Uint8Array | undefined;
  try {
    decoded = NativeCodecs.decodeJpeg(context, { convertColorspaceToRgb: false }).getDecodedBuffer();
  } catch (e) {
    if (e instanceof Error && e.name === 'RuntimeError') discardCodec('dcmtk-jpeg');
    throw new MedsegIoError('CORRUPT', `dcmtk-jpeg cannot decode the 12-bit frame: ${describe(e)}`, path);
  }
  return { raw: resample(decoded ?? new Uint8Array(0), 2, 2, count, 'dcmtk-jpeg', path), interleaved: false, photometric: g.photometric };
}

/** The transfer syntaxes decoded through a codec here. */
export const COMPRESSED_TRANSFER_SYNTAXES: string[] = [
  TS.JpegBaseline,
  TS.JpegExtended,
  TS.JpegLossless,
  TS.JpegLosslessSV1,
  TS.JpegLsLossless,
  TS.JpegLsNear,
  TS.J2kLossless,
  TS.J2k,
  TS.Htj2kLossless,
  TS.Htj2kLosslessRpcl,
  TS.Htj2k,
];
