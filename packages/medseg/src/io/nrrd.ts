/**
 * NRRD reader (attached .nrrd or detached .nhdr + data file; raw, gzip and
 * ascii encodings) and writer (attached, raw or gzip, LPS).
 *
 * Hand-written: the format is a short text header, and we need exact control
 * of limits, of axis permutation (a 'none' direction marks a channel axis,
 * which may come first) and of the space -> LPS conversion.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MedsegIoError } from './errors.ts';
import { checkGeometry, decomposeAffine } from './geometry.ts';
import { checkAllocation, fsError, gunzipBounded, resolveLimits, type ReadOptions } from './limits.ts';
import { decodeSamples, decodedBytes, SAMPLE_BYTES, type SampleKind } from './samples.ts';
import { allocVoxels, voxelTypeOf, type Vec3, type Volume, type VoxelArray, type VoxelType } from './volume.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

const TYPES: Record<string, SampleKind> = {};
const addTypes = (kind: SampleKind, names: string[]) => names.forEach((n) => (TYPES[n] = kind));
addTypes('int8', ['signed char', 'int8', 'int8_t']);
addTypes('uint8', ['uchar', 'unsigned char', 'uint8', 'uint8_t']);
addTypes('int16', ['short', 'short int', 'signed short', 'signed short int', 'int16', 'int16_t']);
addTypes('uint16', ['ushort', 'unsigned short', 'unsigned short int', 'uint16', 'uint16_t']);
addTypes('int32', ['int', 'signed int', 'int32', 'int32_t']);
addTypes('uint32', ['uint', 'unsigned int', 'uint32', 'uint32_t']);
addTypes('int64', ['longlong', 'long long', 'long long int', 'signed long long', 'signed long long int', 'int64', 'int64_t']);
addTypes('uint64', ['ulonglong', 'unsigned long long', 'unsigned long long int', 'uint64', 'uint64_t']);
addTypes('float32', ['float']);
addTypes('float64', ['double']);

/** Sign flips taking each named space to LPS. scanner-xyz / 3D-right-handed have no anatomy: taken as LPS, as ITK does. */
const SPACES: Record<string, Vec3> = {
  'left-posterior-superior': [1, 1, 1],
  lps: [1, 1, 1],
  'right-anterior-superior': [-1, -1, 1],
  ras: [-1, -1, 1],
  'left-anterior-superior': [1, -1, 1],
  las: [1, -1, 1],
  'scanner-xyz': [1, 1, 1],
  '3d-right-handed': [1, 1, 1],
};

const MAX_HEADER = 1 << 20;

export interface NrrdHeader {
  fields: Map<string, string>;
  keys: Record<string, string>;
  dataOffset: number; // -1 when the header has no blank line (detached)
}

export function parseNrrdHeader(buf: Uint8Array, path?: string): NrrdHeader {
  const magic = Buffer.from(buf.subarray(0, 8)).toString('latin1');
  if (!/^NRRD000[1-9]$/.test(magic)) throw new MedsegIoError('BAD_MAGIC', 'not a NRRD file (no NRRD000x magic)', path);
  const scan = buf.subarray(0, Math.min(buf.length, MAX_HEADER));
  let end = -1;
  let dataOffset = -1;
  for (let i = 0; i < scan.length - 1; i++) {
    if (scan[i] === 0x0a && scan[i + 1] === 0x0a) {
      end = i;
      dataOffset = i + 2;
      break;
    }
    if (scan[i] === 0x0a && scan[i + 1] === 0x0d && scan[i + 2] === 0x0a) {
      end = i;
      dataOffset = i + 3;
      break;
    }
  }
  if (end < 0) {
    if (buf.length >= MAX_HEADER) throw new MedsegIoError('BAD_DATA', 'NRRD header longer than 1 MiB', path);
    end = buf.length;
  }
  const text = Buffer.from(buf.subarray(0, end)).toString('latin1');
  const fields = new Map<string, string>();
  const keys: Record<string, string> = {};
  for (const raw of text.split('\n').slice(1)) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const kv = line.indexOf(':=');
    const f = line.indexOf(': ');
    if (kv >= 0 && (f < 0 || kv < f)) {
      keys[line.slice(0, kv)] = line.slice(kv + 2);
    } else if (f >= 0) {
      fields.set(line.slice(0, f).trim().toLowerCase(), line.slice(f + 2).trim());
    } else {
      throw new MedsegIoError('BAD_DATA', `NRRD header line is neither "field: value" nor "key:=value": ${line.slice(0, 80)}`, path);
    }
  }
  return { fields, keys, dataOffset };
}

function parseVector(s: string, path?: string): number[] | null {
  if (s === 'none') return null;
  const m = /^\(([^()]*)\)$/.exec(s.trim());
  if (!m) throw new MedsegIoError('BAD_GEOMETRY', `bad NRRD vector "${s}"`, path);
  return m[1]!.split(',').map((x) => Number(x.trim()));
}

function splitVectors(s: string): string[] {
  return s.match(/\([^()]*\)|none/g) ?? [];
}

export interface NrrdReadOptions extends ReadOptions {
  path?: string;
  /** Loads a detached data file named by the header (relative names resolved by the caller). */
  readDataFile?: (name: string) => Uint8Array;
}

export function parseNrrd(buf: Uint8Array, opts: NrrdReadOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const h = parseNrrdHeader(buf, path);
  const F = h.fields;
  const need = (name: string) => {
    const v = F.get(name);
    if (v === undefined) throw new MedsegIoError('BAD_DATA', `NRRD header has no "${name}" field`, path);
    return v;
  };
  const kind = TYPES[need('type').toLowerCase()];
  if (!kind) throw new MedsegIoError('UNSUPPORTED', `NRRD type "${F.get('type')}" is not supported`, path);
  const dim = Number(need('dimension'));
  if (!Number.isInteger(dim) || dim < 1 || dim > 16) throw new MedsegIoError('BAD_DATA', `NRRD dimension ${F.get('dimension')} is invalid`, path);
  const sizes = need('sizes').split(/\s+/).map(Number);
  if (sizes.length !== dim || sizes.some((s) => !Number.isSafeInteger(s) || s < 1)) {
    throw new MedsegIoError('BAD_DATA', `NRRD sizes "${F.get('sizes')}" do not give ${dim} positive integers`, path);
  }
  const count = sizes.reduce((a, b) => a * b, 1);
  const width = SAMPLE_BYTES[kind];
  const dataBytes = checkAllocation(count, width, limits, path);
  checkAllocation(count, decodedBytes(kind), limits, path);

  // --- which axes are spatial, and their geometry ---
  const kinds = F.get('kinds')?.split(/\s+/);
  if (kinds && kinds.length !== dim) throw new MedsegIoError('BAD_DATA', `NRRD kinds has ${kinds.length} entries for ${dim} axes`, path);
  const spaceName = F.get('space')?.toLowerCase();
  const spaceDimField = F.get('space dimension');
  let spatial: number[];
  const cols: number[][] = [];
  let origin: Vec3 = [0, 0, 0];
  if (spaceName !== undefined || spaceDimField !== undefined) {
    let flip: Vec3 = [1, 1, 1];
    let spaceDim = 3;
    if (spaceName !== undefined) {
      const f = SPACES[spaceName];
      if (!f) throw new MedsegIoError('UNSUPPORTED', `NRRD space "${F.get('space')}" is not supported`, path);
      flip = f;
    } else {
      spaceDim = Number(spaceDimField);
      if (spaceDim !== 2 && spaceDim !== 3) throw new MedsegIoError('UNSUPPORTED', `NRRD space dimension ${spaceDimField} is not supported`, path);
    }
    const dirs = splitVectors(need('space directions'));
    if (dirs.length !== dim) throw new MedsegIoError('BAD_GEOMETRY', `NRRD space directions has ${dirs.length} entries for ${dim} axes`, path);
    spatial = [];
    dirs.forEach((d, axis) => {
      const v = parseVector(d, path);
      if (!v) return;
      if (v.length !== spaceDim) throw new MedsegIoError('BAD_GEOMETRY', `space direction ${d} is not ${spaceDim}-D`, path);
      spatial.push(axis);
      cols.push([0, 1, 2].map((k) => (v[k] ?? 0) * flip[k]!));
    });
    const o = F.get('space origin');
    if (o !== undefined) {
      const v = parseVector(o, path);
      if (!v || v.length !== spaceDim) throw new MedsegIoError('BAD_GEOMETRY', `bad space origin ${o}`, path);
      origin = [0, 1, 2].map((k) => (v[k] ?? 0) * flip[k]!) as Vec3;
    }
  } else {
    // no world space: axes of kind domain/space (or no kinds) are spatial, spacing from "spacings"
    spatial = [];
    for (let a = 0; a < dim; a++) {
      const k = kinds?.[a]?.toLowerCase();
      if (k === undefined || k === 'domain' || k === 'space' || k === '???' || k === 'none') spatial.push(a);
    }
    spatial = spatial.slice(0, 3);
    const sp = F.get('spacings')?.split(/\s+/).map(Number);
    spatial.forEach((axis, j) => {
      const s = sp ? sp[axis]! : 1;
      const col = [0, 0, 0];
      col[j] = s; // a negative spacing means the axis runs backwards; NaN or 0 is rejected below
      cols.push(col);
    });
  }
  if (spatial.length > 3) throw new MedsegIoError('UNSUPPORTED', `NRRD with ${spatial.length} spatial axes`, path);
  if (spatial.length === 0) throw new MedsegIoError('UNSUPPORTED', 'NRRD without spatial axes', path);
  const channelAxes = [...Array(dim).keys()].filter((a) => !spatial.includes(a));
  const size = [0, 1, 2].map((j) => (j < spatial.length ? sizes[spatial[j]!]! : 1)) as Vec3;
  const channels = channelAxes.reduce((p, a) => p * sizes[a]!, 1);
  while (cols.length < 3) cols.push([0, 0, 0]);
  if (spatial.length === 1) cols[1] = perpendicular(cols[0]!);
  const affine = [
    cols[0]![0]!,
    cols[1]![0]!,
    cols[2]![0]!,
    origin[0],
    cols[0]![1]!,
    cols[1]![1]!,
    cols[2]![1]!,
    origin[1],
    cols[0]![2]!,
    cols[1]![2]!,
    cols[2]![2]!,
    origin[2],
    0,
    0,
    0,
    1,
  ];
  const geom = decomposeAffine(affine, size, path);

  // --- the data bytes ---
  const encoding = need('encoding').toLowerCase();
  const endian = (F.get('endian') ?? 'little').toLowerCase();
  if (endian !== 'little' && endian !== 'big') throw new MedsegIoError('BAD_DATA', `NRRD endian "${endian}"`, path);
  const dataFile = F.get('data file') ?? F.get('datafile');
  let src: Uint8Array;
  if (dataFile !== undefined) {
    if (/^LIST\b/.test(dataFile) || /%/.test(dataFile) || /\s/.test(dataFile.trim())) {
      throw new MedsegIoError('UNSUPPORTED', `NRRD multi-file data ("${dataFile}") is not supported`, path);
    }
    if (!opts.readDataFile) throw new MedsegIoError('UNSUPPORTED', 'detached NRRD data file needs a file reader (use readNrrd)', path);
    src = opts.readDataFile(dataFile.trim());
  } else {
    if (h.dataOffset < 0) throw new MedsegIoError('TRUNCATED', 'NRRD header has no blank line and no data file', path);
    src = buf.subarray(h.dataOffset);
  }
  const lineSkip = Number(F.get('line skip') ?? F.get('lineskip') ?? 0);
  const byteSkip = Number(F.get('byte skip') ?? F.get('byteskip') ?? 0);
  if (!Number.isSafeInteger(lineSkip) || lineSkip < 0 || !Number.isSafeInteger(byteSkip) || byteSkip < -1) {
    throw new MedsegIoError('BAD_DATA', 'bad NRRD line skip / byte skip', path);
  }
  for (let l = 0; l < lineSkip; l++) {
    const nl = src.indexOf(0x0a);
    if (nl < 0) throw new MedsegIoError('TRUNCATED', 'NRRD line skip runs past the end of the data', path);
    src = src.subarray(nl + 1);
  }
  let data: VoxelArray;
  if (encoding === 'raw' || encoding === 'gzip' || encoding === 'gz') {
    let bytes = src;
    if (encoding !== 'raw') {
      if (byteSkip === -1) throw new MedsegIoError('BAD_DATA', 'byte skip -1 is only valid for raw encoding', path);
      bytes = gunzipBounded(src, 2 * (dataBytes + byteSkip) + (1 << 20), limits, path);
    }
    const start = byteSkip === -1 ? bytes.length - dataBytes : byteSkip;
    if (start < 0 || bytes.length < start + dataBytes) {
      throw new MedsegIoError('TRUNCATED', `NRRD data has ${Math.max(0, bytes.length - Math.max(0, start))} bytes, ${dataBytes} expected`, path);
    }
    data = decodeSamples(bytes.subarray(start, start + dataBytes), kind, count, endian === 'little');
  } else if (encoding === 'ascii' || encoding === 'text' || encoding === 'txt') {
    data = parseAscii(src.subarray(Math.max(0, byteSkip)), kind, count, path);
  } else {
    throw new MedsegIoError('UNSUPPORTED', `NRRD encoding "${encoding}" is not supported (raw, gzip, ascii are)`, path);
  }
  const order = [...spatial, ...channelAxes];
  if (order.some((a, i) => a !== i)) data = permuteAxes(data, sizes, order);
  return {
    data,
    size,
    channels,
    ...geom,
    meta: {
      sourcePath: path,
      extra: {
        format: 'nrrd',
        type: F.get('type'),
        space: F.get('space'),
        kinds,
        content: F.get('content'),
        keys: h.keys,
      },
    },
  };
}

function perpendicular(a: number[]): number[] {
  // any unit vector orthogonal to a, for 1D images
  const t = Math.abs(a[0]!) < 0.9 ? [1, 0, 0] : [0, 1, 0];
  const c = [a[1]! * t[2]! - a[2]! * t[1]!, a[2]! * t[0]! - a[0]! * t[2]!, a[0]! * t[1]! - a[1]! * t[0]!];
  const n = Math.hypot(c[0]!, c[1]!, c[2]!) || 1;
  return c.map((x) => x / n);
}

function parseAscii(src: Uint8Array, kind: SampleKind, count: number, path?: string): VoxelArray {
  const type: VoxelType = kind === 'int64' || kind === 'uint64' ? 'float64' : kind;
  const out = allocVoxels(type, count);
  const text = Buffer.from(src).toString('latin1');
  const re = /[^\s,]+/g;
  let i = 0;
  let m: RegExpExecArray | null;
  while (i < count && (m = re.exec(text)) !== null) {
    const v = Number(m[0]);
    if (Number.isNaN(v) && !/^[+-]?nan$/i.test(m[0])) throw new MedsegIoError('BAD_DATA', `NRRD ascii value "${m[0].slice(0, 20)}" is not a number`, path);
    out[i++] = v;
  }
  if (i < count) throw new MedsegIoError('TRUNCATED', `NRRD ascii data has ${i} values, ${count} expected`, path);
  return out;
}

/** Reorder axes: output axis k is input axis order[k] (first axis fastest). */
function permuteAxes(src: VoxelArray, sizes: number[], order: number[]): VoxelArray {
  const n = sizes.length;
  const inStride: number[] = [];
  let s = 1;
  for (let a = 0; a < n; a++) {
    inStride.push(s);
    s *= sizes[a]!;
  }
  const oSize = order.map((a) => sizes[a]!);
  const oStride = order.map((a) => inStride[a]!);
  const out = allocVoxels(voxelTypeOf(src), src.length);
  const idx = new Array<number>(n).fill(0);
  let p = 0;
  const n0 = oSize[0]!;
  const st0 = oStride[0]!;
  for (let o = 0; o < out.length;) {
    for (let x = 0, q = p; x < n0; x++, q += st0) out[o++] = src[q]!;
    // odometer over axes 1..n-1
    let k = 1;
    while (k < n) {
      idx[k]!++;
      p += oStride[k]!;
      if (idx[k]! < oSize[k]!) break;
      p -= oStride[k]! * oSize[k]!;
      idx[k] = 0;
      k++;
    }
    if (k === n) break;
  }
  return out;
}

export async function readNrrd(path: string, opts: ReadOptions = {}): Promise<Volume> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  // detached data is read synchronously inside parseNrrd; load it up front
  const h = parseNrrdHeader(buf, path);
  const df = (h.fields.get('data file') ?? h.fields.get('datafile'))?.trim();
  let detached: Uint8Array | undefined;
  if (df !== undefined && !/^LIST\b/.test(df) && !/%/.test(df) && !/\s/.test(df)) {
    const p = resolve(dirname(path), df);
    try {
      detached = await readFile(p);
    } catch (e) {
      throw fsError(e, p);
    }
  }
  return parseNrrd(buf, { ...opts, path, readDataFile: () => detached! });
}

const TYPE_NAME: Record<VoxelType, string> = {
  uint8: 'uint8',
  int8: 'int8',
  uint16: 'uint16',
  int16: 'int16',
  uint32: 'uint32',
  int32: 'int32',
  float32: 'float',
  float64: 'double',
};

export interface NrrdWriteOptions {
  encoding?: 'raw' | 'gzip';
}

export function encodeNrrd(v: Volume, opts: NrrdWriteOptions = {}): Buffer {
  checkGeometry(v);
  const nvox = v.size[0] * v.size[1] * v.size[2];
  if (v.data.length !== nvox * v.channels) throw new MedsegIoError('BAD_DATA', `data length ${v.data.length} != voxels x channels ${nvox * v.channels}`);
  const encoding = opts.encoding ?? 'gzip';
  const vec = (a: number[]) => `(${a.map((x) => String(x)).join(',')})`;
  const dirs = [0, 1, 2].map((j) => vec([0, 1, 2].map((r) => v.direction[r * 3 + j]! * v.spacing[j]!)));
  const multi = v.channels > 1;
  const lines = [
    'NRRD0004',
    '# written by medseg',
    `type: ${TYPE_NAME[voxelTypeOf(v.data)]}`,
    `dimension: ${multi ? 4 : 3}`,
    'space: left-posterior-superior',
    `sizes: ${[...v.size, ...(multi ? [v.channels] : [])].join(' ')}`,
    `space directions: ${[...dirs, ...(multi ? ['none'] : [])].join(' ')}`,
    `kinds: domain domain domain${multi ? ' list' : ''}`,
    'endian: little',
    `encoding: ${encoding}`,
    `space origin: ${vec(v.origin)}`,
  ];
  const body = Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  return Buffer.concat([Buffer.from(lines.join('\n') + '\n\n', 'latin1'), encoding === 'gzip' ? gzipSync(body) : body]);
}

export async function writeNrrd(path: string, v: Volume, opts: NrrdWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeNrrd(v, opts));
}
