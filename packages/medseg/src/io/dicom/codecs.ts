/**
 * The WebAssembly and JavaScript decoders for compressed pixel data, loaded
 * lazily: a codec is instantiated the first time a file needs it, once per
 * process, from the .wasm file that ships inside its npm package (read from
 * disk, never fetched). Reading an uncompressed series loads none of them.
 *
 *   JPEG-LS (.4.80, .4.81)                 @cornerstonejs/codec-charls (CharLS)
 *   JPEG 2000 (.4.90, .4.91)               @cornerstonejs/codec-openjpeg (OpenJPEG)
 *   HTJ2K (.4.201, .4.202, .4.203)         @cornerstonejs/codec-openjph (OpenJPH)
 *   JPEG baseline / extended 8-bit (.4.50, .4.51)   @cornerstonejs/codec-libjpeg-turbo-8bit
 *   JPEG extended 12-bit (.4.51)           dcmjs-codecs (DCMTK's IJG JPEG, 8/12/16-bit builds)
 *   JPEG lossless (.4.57, .4.70)           @cornerstonejs/jpeg-lossless-decoder-js (plain JavaScript)
 *
 * A .4.51 file loads both JPEG codecs: which one a frame needs (8- or 12-bit
 * samples) shows only in its SOF, and libjpeg-turbo is the faster for 8 bits.
 * Decoding itself is synchronous (decodeFrames is called from synchronous
 * readers); `loadCodecFor` is the one asynchronous step and is awaited before.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { MedsegIoError } from '../errors.ts';
import { TS } from './parse.ts';

const require = createRequire(import.meta.url);

/** The emscripten decoder classes share this surface (CharLS, OpenJPEG, OpenJPH, libjpeg-turbo). */
export interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean; isUsingColorTransform?: boolean };
  readHeader?(): void;
  getInterleaveMode?(): number;
  getNearLossless?(): number;
  delete(): void;
}

interface WasmModule {
  JpegLSDecoder?: new () => WasmDecoder;
  J2KDecoder?: new () => WasmDecoder;
  HTJ2KDecoder?: new () => WasmDecoder;
  JPEGDecoder?: new () => WasmDecoder;
}

export interface LosslessJpegDecoder {
  decompress(buffer: ArrayBuffer, offset?: number, length?: number): ArrayBuffer;
  xDim: number;
  yDim: number;
  numComp: number;
  numBytes: number;
  precision?: number;
}

/** The part of dcmjs-codecs used here: its WebAssembly module is one process-wide instance. */
export interface DcmtkCodecs {
  NativeCodecs: {
    initializeAsync(opts: { webAssemblyModulePathOrUrl: string }): Promise<void>;
    release(): void;
    decodeJpeg(context: DcmtkContext, parameters: { convertColorspaceToRgb: boolean }): DcmtkContext;
  };
  Context: new (attrs: {
    width: number;
    height: number;
    bitsAllocated: number;
    bitsStored: number;
    samplesPerPixel: number;
    pixelRepresentation: number;
    planarConfiguration: number;
    photometricInterpretation: string;
    encodedBuffer: Uint8Array;
  }) => DcmtkContext;
}

export interface DcmtkContext {
  getDecodedBuffer(): Uint8Array | undefined;
}

export type CodecName = 'charls' | 'openjpeg' | 'openjph' | 'libjpeg-turbo' | 'jpeg-lossless' | 'dcmtk-jpeg';

export type EmscriptenCodec = Exclude<CodecName, 'jpeg-lossless' | 'dcmtk-jpeg'>;

/** Package entry points: the emscripten factory and its .wasm, both inside the package. */
const WASM: Record<EmscriptenCodec, { js: string; wasm: string; cls: keyof WasmModule }> = {
  charls: { js: '@cornerstonejs/codec-charls/decodewasmjs', wasm: '@cornerstonejs/codec-charls/decodewasm', cls: 'JpegLSDecoder' },
  openjpeg: { js: '@cornerstonejs/codec-openjpeg/decodewasmjs', wasm: '@cornerstonejs/codec-openjpeg/decodewasm', cls: 'J2KDecoder' },
  openjph: { js: '@cornerstonejs/codec-openjph/wasmjs', wasm: '@cornerstonejs/codec-openjph/wasm', cls: 'HTJ2KDecoder' },
  'libjpeg-turbo': {
    js: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
    wasm: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm',
    cls: 'JPEGDecoder',
  },
};

/** Which codec decodes a transfer syntax; undefined for native syntaxes, RLE (decoded in pixels.ts) and unknown ones. */
export function codecFor(ts: string): CodecName | undefined {
  switch (ts) {
    case TS.JpegLsLossless:
    case TS.JpegLsNear:
      return 'charls';
    case TS.J2kLossless:
    case TS.J2k:
      return 'openjpeg';
    case TS.Htj2kLossless:
    case TS.Htj2kLosslessRpcl:
    case TS.Htj2k:
      return 'openjph';
    case TS.JpegBaseline:
    case TS.JpegExtended:
      return 'libjpeg-turbo';
    case TS.JpegLossless:
    case TS.JpegLosslessSV1:
      return 'jpeg-lossless';
    default:
      return undefined;
  }
}

/** Every codec a file of a transfer syntax may need: codecFor's, plus DCMTK's 12-bit JPEG for extended JPEG. */
function codecsFor(ts: string): CodecName[] {
  const name = codecFor(ts);
  if (!name) return [];
  return ts === TS.JpegExtended ? [name, 'dcmtk-jpeg'] : [name];
}

const loaded = new Map<CodecName, WasmModule | { Decoder: new () => LosslessJpegDecoder } | DcmtkCodecs>();
const loading = new Map<CodecName, Promise<void>>();

async function instantiate(name: CodecName): Promise<void> {
  try {
    if (name === 'jpeg-lossless') {
      const mod = require('@cornerstonejs/jpeg-lossless-decoder-js') as { Decoder: new () => LosslessJpegDecoder };
      loaded.set(name, mod);
      return;
    }
    if (name === 'dcmtk-jpeg') {
      const mod = require('dcmjs-codecs') as DcmtkCodecs;
      await mod.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: require.resolve('dcmjs-codecs/build/dcmjs-native-codecs.wasm') });
      loaded.set(name, mod);
      return;
    }
    const spec = WASM[name];
    const factory = require(spec.js) as (opts: Record<string, unknown>) => Promise<WasmModule>;
    const wasmBinary = readFileSync(require.resolve(spec.wasm));
    // print/printErr: OpenJPEG logs every header it reads to stdout otherwise.
    const mod = await factory({ wasmBinary, print: () => {}, printErr: () => {} });
    if (typeof mod[spec.cls] !== 'function') throw new Error(`${spec.js} has no ${spec.cls}`);
    loaded.set(name, mod);
  } finally {
    loading.delete(name);
  }
}

/** Loads the codecs a transfer syntax needs (no-op for syntaxes decoded without one). */
export async function loadCodecFor(ts: string): Promise<void> {
  await Promise.all(codecsFor(ts).map((name) => loadCodec(name, ts)));
}

async function loadCodec(name: CodecName, ts: string): Promise<void> {
  if (loaded.has(name)) return;
  let p = loading.get(name);
  if (!p) {
    p = instantiate(name).catch((e: unknown) => {
      throw new MedsegIoError('UNSUPPORTED', `the ${name} decoder for transfer syntax ${ts} does not load: ${(e as Error).message}`);
    });
    loading.set(name, p);
  }
  await p;
}

/** Loads every codec needed by a set of transfer syntaxes. */
export async function loadCodecsFor(tss: Iterable<string>): Promise<void> {
  await Promise.all([...new Set(tss)].map(loadCodecFor));
}

function notLoaded(name: CodecName, path?: string): never {
  throw new MedsegIoError('UNSUPPORTED', `the ${name} decoder is not loaded: read compressed files through the async readers (readDicomSeries)`, path);
}

/** A fresh decoder instance of a loaded WebAssembly codec (the caller deletes it). */
export function wasmDecoder(name: EmscriptenCodec, path?: string): WasmDecoder {
  const mod = loaded.get(name) as WasmModule | undefined;
  if (!mod) notLoaded(name, path);
  return new mod[WASM[name].cls]!();
}

export function losslessJpegDecoder(path?: string): LosslessJpegDecoder {
  const mod = loaded.get('jpeg-lossless') as { Decoder: new () => LosslessJpegDecoder } | undefined;
  if (!mod) notLoaded('jpeg-lossless', path);
  return new mod.Decoder();
}

export function dcmtkCodecs(path?: string): DcmtkCodecs {
  const mod = loaded.get('dcmtk-jpeg') as DcmtkCodecs | undefined;
  if (!mod) notLoaded('dcmtk-jpeg', path);
  return mod;
}

/**
 * After a WebAssembly trap (abort, out-of-bounds, unreachable) an emscripten
 * instance may be left in a broken state: drop it so the next file that needs
 * the codec gets a fresh one.
 */
export function discardCodec(name: CodecName): void {
  if (name === 'dcmtk-jpeg') (loaded.get(name) as DcmtkCodecs | undefined)?.NativeCodecs.release();
  loaded.delete(name);
}

/** Whether a codec is instantiated (for tests of lazy loading). */
export function isCodecLoaded(name: CodecName): boolean {
  return loaded.has(name);
}
