/**
 * NIfTI-1 / NIfTI-2 reader and writer (.nii, .nii.gz), single-file only.
 *
 * Hand-written rather than taken from npm: the reader must agree with nibabel
 * on every geometry corner case (sform/qform precedence, qfac, header fixes),
 * check every size before allocating, and map straight onto our planar
 * x-fastest layout, which is NIfTI's own order (dims 4.. become channels).
 */
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { MedsegIoError } from './errors.ts';
import { decomposeAffine, flipLpsRas, checkGeometry, composeAffine } from './geometry.ts';
import { checkAllocation, fsError, gunzipBounded, gunzipPrefix, isGzip, resolveLimits, type ReadOptions } from './limits.ts';
import { decodeSamples } from './samples.ts';
import { voxelTypeOf, type Vec3, type Volume, type VoxelType } from './volume.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

type RawKind = VoxelType | 'int64' | 'uint64' | 'rgb24';
const DATATYPES: Record<number, { kind: RawKind; bytes: number }> = {
  2: { kind: 'uint8', bytes: 1 },
  4: { kind: 'int16', bytes: 2 },
  8: { kind: 'int32', bytes: 4 },
  16: { kind: 'float32', bytes: 4 },
  64: { kind: 'float64', bytes: 8 },
  128: { kind: 'rgb24', bytes: 3 },
  256: { kind: 'int8', bytes: 1 },
  512: { kind: 'uint16', bytes: 2 },
  768: { kind: 'uint32', bytes: 4 },
  1024: { kind: 'int64', bytes: 8 },
  1280: { kind: 'uint64', bytes: 8 },
};
const CODE_OF: Record<VoxelType, number> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
};

interface Header {
  version: 1 | 2;
  le: boolean;
  dims: number[]; // dim[0..7]
  datatype: number;
  pixdim: number[]; // pixdim[0..7]
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: Vec3;
  srow: number[]; // 12
  xyztUnits: number;
  intentCode: number;
  descrip: string;
}

const MAGIC2 = [0x6e, 0x2b, 0x32, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];

function cstr(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(end >= 0 ? b.subarray(0, end) : b).toString('latin1');
}

function parseHeader(buf: Uint8Array, path?: string): Header {
  if (buf.length < 348) throw new MedsegIoError('TRUNCATED', `file is ${buf.length} bytes, shorter than a NIfTI header`, path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let version: 1 | 2;
  let le: boolean;
  const s = dv.getInt32(0, true);
  const sb = dv.getInt32(0, false);
  if (s === 348 || s === 540) [version, le] = [s === 348 ? 1 : 2, true];
  else if (sb === 348 || sb === 540) [version, le] = [sb === 348 ? 1 : 2, false];
  else throw new MedsegIoError('BAD_MAGIC', `sizeof_hdr is ${s}, not 348 (NIfTI-1) or 540 (NIfTI-2)`, path);
  if (version === 2 && buf.length < 540) throw new MedsegIoError('TRUNCATED', 'file shorter than a NIfTI-2 header', path);

  const i16 = (o: number) => dv.getInt16(o, le);
  const i32 = (o: number) => dv.getInt32(o, le);
  const f32 = (o: number) => dv.getFloat32(o, le);
  const f64 = (o: number) => dv.getFloat64(o, le);
  const i64 = (o: number) => {
    const v = dv.getBigInt64(o, le);
    // beyond 2^53 it cannot be a real size; let the range checks reject it
    return v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
  };

  if (version === 1) {
    const magic = cstr(buf.subarray(344, 348));
    if (magic === 'ni1') throw new MedsegIoError('UNSUPPORTED', 'NIfTI-1 pair (.hdr/.img) is not supported; convert to a single .nii', path);
    if (magic !== 'n+1') throw new MedsegIoError('BAD_MAGIC', `NIfTI-1 magic is "${magic}", expected "n+1"`, path);
    return {
      version,
      le,
      dims: Array.from({ length: 8 }, (_, k) => i16(40 + 2 * k)),
      datatype: i16(70),
      pixdim: Array.from({ length: 8 }, (_, k) => f32(76 + 4 * k)),
      voxOffset: f32(108),
      sclSlope: f32(112),
      sclInter: f32(116),
      xyztUnits: buf[123]!,
      descrip: cstr(buf.subarray(148, 228)),
      qformCode: i16(252),
      sformCode: i16(254),
      quatern: [f32(256), f32(260), f32(264)],
      qoffset: [f32(268), f32(272), f32(276)],
      srow: Array.from({ length: 12 }, (_, k) => f32(280 + 4 * k)),
      intentCode: i16(68),
    };
  }
  const m = buf.subarray(4, 12);
  if (m[0] === 0x6e && m[1] === 0x69 && m[2] === 0x32) {
    throw new MedsegIoError('UNSUPPORTED', 'NIfTI-2 pair (.hdr/.img) is not supported; convert to a single .nii', path);
  }
  if (!MAGIC2.every((b, k) => m[k] === b)) throw new MedsegIoError('BAD_MAGIC', 'NIfTI-2 magic is not "n+2\\0\\r\\n\\032\\n"', path);
  return {
    version,
    le,
    dims: Array.from({ length: 8 }, (_, k) => i64(16 + 8 * k)),
    datatype: i16(12),
    pixdim: Array.from({ length: 8 }, (_, k) => f64(104 + 8 * k)),
    voxOffset: i64(168),
    sclSlope: f64(176),
    sclInter: f64(184),
    descrip: cstr(buf.subarray(240, 320)),
    qformCode: i32(344),
    sformCode: i32(348),
    quatern: [f64(352), f64(360), f64(368)],
    qoffset: [f64(376), f64(384), f64(392)],
    srow: Array.from({ length: 12 }, (_, k) => f64(400 + 8 * k)),
    xyztUnits: i32(500),
    intentCode: i32(504),
  };
}

/** Row-major 3x3 rotation from a unit quaternion (w, x, y, z). */
function quatToMat(w: number, x: number, y: number, z: number): number[] {
  const n = w * w + x * x + y * y + z * z;
  if (n < 1e-300) return [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const s = 2 / n;
  const [X, Y, Z] = [x * s, y * s, z * s];
  const [wX, wY, wZ, xX, xY, xZ, yY, yZ, zZ] = [w * X, w * Y, w * Z, x * X, x * Y, x * Z, y * Y, y * Z, z * Z];
  return [1 - (yY + zZ), xY - wZ, xZ + wY, xY + wZ, 1 - (xX + zZ), yZ - wX, xZ - wY, yZ + wX, 1 - (xX + yY)];
}

/**
 * The RAS affine nibabel reports as img.affine: header fixes of check_fix
 * (zero pixdim -> 1, negative -> abs, qfac not +-1 -> 1, unknown xform codes
 * -> 0), then sform if sform_code != 0, else qform if qform_code != 0, else
 * the pixdim-based base affine centred on the volume with x flipped.
 */
export function niftiAffine(h: Header, path?: string): number[] {
  const pix = h.pixdim.slice();
  for (let k = 1; k <= 3; k++) pix[k] = pix[k] === 0 ? 1 : Math.abs(pix[k]!);
  const qfac = pix[0] === -1 ? -1 : 1;
  const validCode = (c: number) => (Number.isInteger(c) && c >= 0 && c <= 5 ? c : 0);
  if (validCode(h.sformCode) !== 0) return [...h.srow, 0, 0, 0, 1];
  if (validCode(h.qformCode) !== 0) {
    const [b, c, d] = h.quatern;
    const w2 = 1 - (b * b + c * c + d * d);
    const thresh = -(h.version === 1 ? 2 ** -23 : 2 ** -52) * 3;
    if (!(w2 >= thresh)) throw new MedsegIoError('BAD_GEOMETRY', `qform quaternion (${b}, ${c}, ${d}) is not a unit quaternion`, path);
    const R = quatToMat(w2 < 0 ? 0 : Math.sqrt(w2), b, c, d);
    const vox = [pix[1]!, pix[2]!, pix[3]! * qfac];
    return [
      R[0]! * vox[0]!,
      R[1]! * vox[1]!,
      R[2]! * vox[2]!,
      h.qoffset[0],
      R[3]! * vox[0]!,
      R[4]! * vox[1]!,
      R[5]! * vox[2]!,
      h.qoffset[1],
      R[6]! * vox[0]!,
      R[7]! * vox[1]!,
      R[8]! * vox[2]!,
      h.qoffset[2],
      0,
      0,
      0,
      1,
    ];
  }
  const ndim = h.dims[0]!;
  const shape = [1, 2, 3].map((k) => (k <= ndim ? h.dims[k]! : 1));
  const zooms = [1, 2, 3].map((k) => (k <= ndim ? pix[k]! : 1));
  zooms[0] = -zooms[0]!;
  return [
    zooms[0]!,
    0,
    0,
    -((shape[0]! - 1) / 2) * zooms[0]!,
    0,
    zooms[1]!,
    0,
    -((shape[1]! - 1) / 2) * zooms[1]!,
    0,
    0,
    zooms[2]!,
    -((shape[2]! - 1) / 2) * zooms[2]!,
    0,
    0,
    0,
    1,
  ];
}

export function parseNifti(input: Uint8Array, opts: ReadOptions & { path?: string } = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const gz = isGzip(input);
  const head = gz ? gunzipPrefix(input, 16 * 1024, path) : input;
  const h = parseHeader(head, path);

  const ndim = h.dims[0]!;
  if (!(ndim >= 1 && ndim <= 7)) throw new MedsegIoError('BAD_DATA', `dim[0] = ${ndim}, must be 1..7`, path);
  const shape = h.dims.slice(1, ndim + 1);
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) throw new MedsegIoError('BAD_DATA', `dimension ${d} is not a positive integer (dims ${shape.join('x')})`, path);
  }
  const dt = DATATYPES[h.datatype];
  if (!dt) throw new MedsegIoError('UNSUPPORTED', `NIfTI datatype ${h.datatype} is not supported`, path);
  const size: Vec3 = [shape[0]!, shape[1] ?? 1, shape[2] ?? 1];
  let channels = shape.slice(3).reduce((a, b) => a * b, 1);
  const nvox = size[0] * size[1] * size[2];
  const count = nvox * channels;
  const slope = h.sclSlope;
  const inter = h.sclInter;
  // scl_slope / scl_inter exactly as nibabel: slope 0 or non-finite -> none; else float64 unless identity
  const scaled = dt.kind !== 'rgb24' && slope !== 0 && Number.isFinite(slope) && !(slope === 1 && inter === 0);
  if (scaled && !Number.isFinite(inter)) throw new MedsegIoError('BAD_DATA', `valid scl_slope but invalid scl_inter ${inter}`, path);
  const dataBytes = checkAllocation(count, dt.bytes, limits, path);
  checkAllocation(count, scaled || dt.kind === 'int64' || dt.kind === 'uint64' ? 8 : dt.bytes, limits, path);
  if (dt.kind === 'rgb24') channels *= 3;

  let voxOffset = h.voxOffset;
  const minOffset = h.version === 1 ? 352 : 544;
  if (voxOffset === 0) voxOffset = minOffset;
  if (!Number.isSafeInteger(voxOffset) || voxOffset < minOffset) {
    throw new MedsegIoError('BAD_DATA', `vox_offset ${h.voxOffset} is not an integer >= ${minOffset}`, path);
  }
  const need = voxOffset + dataBytes;
  // a stream that inflates far past what the header declares is a bomb, not an image
  const whole = gz ? gunzipBounded(input, 2 * need + (1 << 20), limits, path) : input;
  if (whole.length < need) {
    throw new MedsegIoError('TRUNCATED', `expected ${need} bytes (header + data), file has ${whole.length}`, path);
  }
  const raw = whole.subarray(voxOffset, need);
  let data = dt.kind === 'rgb24' ? decodeSamples(raw, 'uint8', count * 3, true) : decodeSamples(raw, dt.kind, count, h.le);
  if (dt.kind === 'rgb24') data = deinterleave(data as Uint8Array, nvox, channels);

  if (scaled) {
    const out = new Float64Array(data.length);
    // same operations as nibabel's apply_read_scaling (multiply, then add only if non-zero)
    if (slope !== 1) for (let i = 0; i < data.length; i++) out[i] = data[i]! * slope;
    else out.set(data);
    if (inter !== 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! + inter;
    data = out;
  }

  const ras = niftiAffine(h, path);
  const g = decomposeAffine(flipLpsRas(ras), size, path);
  return {
    data,
    size,
    channels,
    ...g,
    meta: {
      sourcePath: path,
      extra: {
        format: h.version === 1 ? 'nifti1' : 'nifti2',
        datatype: h.datatype,
        shape,
        qformCode: h.qformCode,
        sformCode: h.sformCode,
        sclSlope: slope,
        sclInter: inter,
        xyztUnits: h.xyztUnits,
        intentCode: h.intentCode,
        descrip: h.descrip,
        pixdim: h.pixdim,
        affineRAS: ras,
      },
    },
  };
}

/** Voxel-interleaved RGB (per channel block) -> planar channels. */
function deinterleave(src: Uint8Array, nvox: number, channels: number): Uint8Array {
  const out = new Uint8Array(src.length);
  const groups = channels / 3;
  for (let t = 0; t < groups; t++) {
    const base = t * nvox * 3;
    for (let k = 0; k < 3; k++) {
      const ob = (t * 3 + k) * nvox;
      for (let i = 0; i < nvox; i++) out[ob + i] = src[base + i * 3 + k]!;
    }
  }
  return out;
}

export async function readNifti(path: string, opts: ReadOptions = {}): Promise<Volume> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  return parseNifti(buf, { ...opts, path });
}

export interface NiftiWriteOptions {
  /** 1 (default; 2 when a dimension exceeds 32767) or 2. */
  version?: 1 | 2;
  gzip?: boolean;
  /** The header's descrip text (default 'medseg'; at most 79 latin-1 characters are kept). */
  descrip?: string;
}

/**
 * Quaternion (b, c, d), qfac for an orthonormal RAS rotation, or null when the
 * direction is sheared (then only the sform is written).
 */
function toQuaternion(R: number[]): { bcd: Vec3; qfac: number } | null {
  const m = R.slice();
  const det = m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let dot = 0;
      for (let k = 0; k < 3; k++) dot += m[k * 3 + i]! * m[k * 3 + j]!;
      if (Math.abs(dot - (i === j ? 1 : 0)) > 1e-4) return null;
    }
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) for (let k = 0; k < 3; k++) m[k * 3 + 2] = -m[k * 3 + 2]!;
  const [r11, r12, r13, r21, r22, r23, r31, r32, r33] = m as [number, number, number, number, number, number, number, number, number];
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) [b, c, d] = [-b, -c, -d];
  }
  return { bcd: [b, c, d], qfac };
}

/** NIFTI_INTENT_DISPVECT and NIFTI_INTENT_VECTOR: the channels are the components of one vector per voxel. */
const VECTOR_INTENTS = new Set([1006, 1007]);

/**
 * The NIfTI bytes of a volume. `meta.extra.intentCode` is written as the
 * intent code; with a vector intent (1006, 1007) the channels go to dim 5 as
 * the standard asks for vector fields, otherwise to dim 4.
 */
export function encodeNifti(v: Volume, opts: NiftiWriteOptions = {}): Buffer {
  checkGeometry(v);
  const type = voxelTypeOf(v.data);
  const nvox = v.size[0] * v.size[1] * v.size[2];
  if (v.data.length !== nvox * v.channels) throw new MedsegIoError('BAD_DATA', `data length ${v.data.length} != voxels x channels ${nvox * v.channels}`);
  const extra = v.meta.extra ?? {};
  const intentCode = typeof extra.intentCode === 'number' && Number.isInteger(extra.intentCode) ? extra.intentCode : 0;
  // NIfTI stores a vector per voxel (displacement fields) in dim 5, leaving dim 4 (time) at 1
  const vector = v.channels > 1 && VECTOR_INTENTS.has(intentCode);
  const dims = vector
    ? [5, v.size[0], v.size[1], v.size[2], 1, v.channels, 1, 1]
    : v.channels > 1
      ? [4, v.size[0], v.size[1], v.size[2], v.channels, 1, 1, 1]
      : [3, v.size[0], v.size[1], v.size[2], 1, 1, 1, 1];
  const version = opts.version ?? (dims.some((d) => d > 32767) ? 2 : 1);
  if (version === 1 && dims.some((d) => d > 32767)) throw new MedsegIoError('TOO_LARGE', 'a dimension exceeds 32767: write NIfTI-2');
  const ras = flipLpsRas(composeAffine(v));
  const Rras = [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => (r < 2 ? -1 : 1) * v.direction[r * 3 + c]!));
  const q = toQuaternion(Rras);
  const pixdim = [q?.qfac ?? 1, v.spacing[0], v.spacing[1], v.spacing[2], 1, 1, 1, 1];
  const code = (c: unknown) => (typeof c === 'number' && c >= 1 && c <= 5 ? c : 1);
  const sformCode = code(extra.sformCode);
  const qformCode = q ? code(extra.qformCode) : 0;
  const bitpix = v.data.BYTES_PER_ELEMENT * 8;
  const hdrSize = version === 1 ? 348 : 540;
  const off = version === 1 ? 352 : 544;
  const hdr = Buffer.alloc(off);
  const dv = new DataView(hdr.buffer, hdr.byteOffset, hdr.byteLength);
  dv.setInt32(0, hdrSize, true);
  const descrip = Buffer.from((opts.descrip ?? 'medseg').slice(0, 79), 'latin1');
  if (version === 1) {
    hdr[38] = 0x72; // regular = 'r'
    dv.setInt16(68, intentCode, true);
    dims.forEach((d, k) => dv.setInt16(40 + 2 * k, d, true));
    dv.setInt16(70, CODE_OF[type], true);
    dv.setInt16(72, bitpix, true);
    pixdim.forEach((p, k) => dv.setFloat32(76 + 4 * k, p, true));
    dv.setFloat32(108, off, true);
    dv.setFloat32(112, 1, true);
    dv.setFloat32(116, 0, true);
    hdr[123] = 2; // mm
    descrip.copy(hdr, 148);
    dv.setInt16(252, qformCode, true);
    dv.setInt16(254, sformCode, true);
    if (q) q.bcd.forEach((x, k) => dv.setFloat32(256 + 4 * k, x, true));
    [ras[3]!, ras[7]!, ras[11]!].forEach((x, k) => dv.setFloat32(268 + 4 * k, x, true));
    ras.slice(0, 12).forEach((x, k) => dv.setFloat32(280 + 4 * k, x, true));
    hdr.write('n+1\0', 344, 'latin1');
  } else {
    Buffer.from(MAGIC2).copy(hdr, 4);
    dv.setInt32(504, intentCode, true);
    dv.setInt16(12, CODE_OF[type], true);
    dv.setInt16(14, bitpix, true);
    dims.forEach((d, k) => dv.setBigInt64(16 + 8 * k, BigInt(d), true));
    pixdim.forEach((p, k) => dv.setFloat64(104 + 8 * k, p, true));
    dv.setBigInt64(168, BigInt(off), true);
    dv.setFloat64(176, 1, true);
    dv.setFloat64(184, 0, true);
    descrip.copy(hdr, 240);
    dv.setInt32(344, qformCode, true);
    dv.setInt32(348, sformCode, true);
    if (q) q.bcd.forEach((x, k) => dv.setFloat64(352 + 8 * k, x, true));
    [ras[3]!, ras[7]!, ras[11]!].forEach((x, k) => dv.setFloat64(376 + 8 * k, x, true));
    ras.slice(0, 12).forEach((x, k) => dv.setFloat64(400 + 8 * k, x, true));
    dv.setInt32(500, 2, true);
  }
  const body = Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  const out = Buffer.concat([hdr, body]);
  return opts.gzip ? gzipSync(out, { level: 6 }) : out;
}

export async function writeNifti(path: string, v: Volume, opts: NiftiWriteOptions = {}): Promise<void> {
  const gzip = opts.gzip ?? path.toLowerCase().endsWith('.gz');
  await writeFileAtomic(path, encodeNifti(v, { ...opts, gzip }));
}
