/**
 * NumPy's .npy format (versions 1-3): the magic, a little-endian header
 * length, a Python-literal header dict {'descr', 'fortran_order', 'shape'}
 * and the raw array. Numeric dtypes only (bool, u1-u8, i1-i8, f4, f8; either
 * byte order); object arrays and structured dtypes are refused. The array
 * comes back in C order (a Fortran-order file is reordered).
 */
import { MedsegIoError } from './errors.ts';
import { checkAllocation, resolveLimits, type ReadOptions } from './limits.ts';

export type NpyData =
  Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

export interface NpyArray {
  /** The dtype as numpy names it: 'uint8', 'int64', 'float32', 'bool', ... */
  dtype: string;
  shape: number[];
  /** Elements in C (row-major) order; bool as Uint8Array of 0/1. */
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type Ctor = { new (buffer: ArrayBuffer): NpyData; BYTES_PER_ELEMENT: number };
const KINDS: Record<string, { name: string; ctor: Ctor }> = {
  b1: { name: 'bool', ctor: Uint8Array },
  u1: { name: 'uint8', ctor: Uint8Array },
  i1: { name: 'int8', ctor: Int8Array },
  u2: { name: 'uint16', ctor: Uint16Array },
  i2: { name: 'int16', ctor: Int16Array },
  u4: { name: 'uint32', ctor: Uint32Array },
  i4: { name: 'int32', ctor: Int32Array },
  u8: { name: 'uint64', ctor: BigUint64Array },
  i8: { name: 'int64', ctor: BigInt64Array },
  f4: { name: 'float32', ctor: Float32Array },
  f8: { name: 'float64', ctor: Float64Array },
};

interface Header {
  descr: string;
  fortran: boolean;
  shape: number[];
}

/** Parses the header dict, e.g. {'descr': '<u1', 'fortran_order': False, 'shape': (28, 28), }. */
function parseHeader(text: string, path?: string): Header {
  const bad = (why: string) => new MedsegIoError('BAD_DATA', `npy header ${why}: ${JSON.stringify(text.slice(0, 200))}`, path);
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw bad('is not a dict');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(t);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(t);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(t);
  if (!descr) throw /'descr'\s*:\s*\[/.test(t) ? new MedsegIoError('UNSUPPORTED', 'structured npy dtypes are not supported', path) : bad("has no 'descr'");
  if (!fortran) throw bad("has no 'fortran_order'");
  if (!shape) throw bad("has no 'shape'");
  const dims = shape[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (!dims.every((d) => /^\d{1,15}$/.test(d))) throw bad('has a shape that is not a tuple of non-negative integers');
  return { descr: descr[1]!, fortran: fortran[1] === 'True', shape: dims.map(Number) };
}

function littleEndianHost(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/** Reverses the byte order of every element in place. */
function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}

/** Reorders a Fortran-order (column-major) array to C order. */
function fortranToC<T extends NpyData>(data: T, shape: number[]): T {
  if (shape.length < 2) return data;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const n = shape.length;
  // Strides of the Fortran layout, indexed by axis.
  const fStride: number[] = [];
  let s = 1;
  for (let a = 0; a < n; a++) {
    fStride.push(s);
    s *= shape[a]!;
  }
  const idx = new Array<number>(n).fill(0);
  for (let c = 0; c < data.length; c++) {
    let f = 0;
    for (let a = 0; a < n; a++) f += idx[a]! * fStride[a]!;
    (out as unknown as ArrayLike<unknown> & Record<number, unknown>)[c] = data[f];
    for (let a = n - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

/** Decodes one .npy file. Bad, truncated or oversized input throws a MedsegIoError. */
export function parseNpy(bytes: Uint8Array, path?: string, o: ReadOptions = {}): NpyArray {
  const limits = resolveLimits(o.limits);
  if (bytes.length < 10) throw new MedsegIoError('TRUNCATED', `npy file of ${bytes.length} bytes is shorter than its preamble`, path);
  if (!MAGIC.every((m, i) => bytes[i] === m)) throw new MedsegIoError('BAD_MAGIC', 'not a .npy file (no \\x93NUMPY magic)', path);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new MedsegIoError('UNSUPPORTED', `npy format version ${major}.${bytes[7]} is not supported (1-3 are)`, path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new MedsegIoError('TRUNCATED', 'npy preamble is cut short', path);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (start > bytes.length) throw new MedsegIoError('TRUNCATED', `npy header of ${headerLen} bytes runs past the end of the ${bytes.length}-byte file`, path);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lenBytes, start));
  const h = parseHeader(text, path);
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(h.descr);
  const kind = m ? KINDS[`${m[2]}${m[3]}`] : undefined;
  if (!m || !kind) throw new MedsegIoError('UNSUPPORTED', `npy dtype '${h.descr}' is not supported (numeric and bool dtypes are)`, path);
  const width = kind.ctor.BYTES_PER_ELEMENT;
  const count = h.shape.reduce((a, b) => a * b, 1);
  const nbytes = checkAllocation(count, width, limits, path);
  if (start + nbytes > bytes.length) {
    throw new MedsegIoError('TRUNCATED', `npy data of shape (${h.shape.join(', ')}) needs ${nbytes} bytes, the file holds ${bytes.length - start}`, path);
  }
  const copy = bytes.slice(start, start + nbytes);
  const bigEndian = m[1] === '>' || (m[1] === '=' && !littleEndianHost());
  if (width > 1 && bigEndian === littleEndianHost()) swapBytes(copy, width);
  let data = new kind.ctor(copy.buffer);
  if (h.fortran) data = fortranToC(data, h.shape);
  return { dtype: kind.name, shape: h.shape, data };
}
