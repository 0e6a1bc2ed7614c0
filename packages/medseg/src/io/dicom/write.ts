/**
 * Part 10 writer: Explicit VR Little Endian, defined lengths everywhere
 * (except encapsulated pixel data, which the standard requires undefined),
 * plus helpers to build elements. Elements read big endian are byte-swapped
 * on the way out, so any parsed dataset can be re-written.
 */
import { DicomDataset, binaryWidth, type DicomElement } from './dataset.ts';
import { T } from './dictionary.ts';
import { TS } from './parse.ts';

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const enc = new TextEncoder();
export const IMPLEMENTATION_CLASS_UID = '2.25.200981370419118632779361839620361542117';
export const IMPLEMENTATION_VERSION = 'MEDSEG_0_1';

/** Each character's low byte, as Latin-1 text is stored (the default repertoire is its ASCII part). */
function latin1Bytes(value: string): Uint8Array {
  const b = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) b[i] = value.charCodeAt(i) & 0xff;
  return b;
}

/** Pads a string value to even length: UI with NUL, others with space. */
function strBytes(vr: string, value: string, utf8: boolean): Uint8Array {
  const b = utf8 ? enc.encode(value) : latin1Bytes(value);
  if (b.length % 2 === 0) return b;
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  out[b.length] = vr === 'UI' ? 0 : 0x20;
  return out;
}

/** Decimal String: at most 16 characters. */
export function formatDS(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`DS value ${x} is not finite`);
  if (Object.is(x, -0)) x = 0;
  let s = String(x);
  for (let p = 16; s.length > 16 && p > 0; p--) s = String(Number(x.toPrecision(p)));
  if (s.length > 16) s = x.toExponential(8);
  return s;
}

export const el = {
  str(tag: number, vr: string, value: string | string[], utf8 = false): DicomElement {
    const v = Array.isArray(value) ? value.join('\\') : value;
    return { tag, vr, bytes: strBytes(vr, v, utf8), littleEndian: true };
  },
  nums(tag: number, vr: string, values: number[]): DicomElement {
    if (vr === 'DS') return el.str(tag, vr, values.map(formatDS));
    if (vr === 'IS')
      return el.str(
        tag,
        vr,
        values.map((v) => String(Math.round(v))),
      );
    const w = binaryWidth(vr);
    if (!w) throw new Error(`not a numeric VR: ${vr}`);
    const b = new Uint8Array(values.length * w);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => {
      const o = i * w;
      switch (vr) {
        case 'US':
        case 'OW':
        case 'AT':
          dv.setUint16(o, v, true);
          break;
        case 'SS':
          dv.setInt16(o, v, true);
          break;
        case 'UL':
        case 'OL':
          dv.setUint32(o, v, true);
          break;
        case 'SL':
          dv.setInt32(o, v, true);
          break;
        case 'FL':
        case 'OF':
          dv.setFloat32(o, v, true);
          break;
        case 'FD':
        case 'OD':
          dv.setFloat64(o, v, true);
          break;
        default:
          throw new Error(`unsupported VR ${vr}`);
      }
    });
    return { tag, vr, bytes: b, littleEndian: true };
  },
  /** Attribute Tag values (AT): each tag as group, element. */
  tags(tag: number, tags: number[]): DicomElement {
    return el.nums(
      tag,
      'AT',
      tags.flatMap((t) => [t >>> 16, t & 0xffff]),
    );
  },
  bytes(tag: number, vr: string, bytes: Uint8Array): DicomElement {
    return { tag, vr, bytes, littleEndian: true };
  },
  seq(tag: number, items: DicomDataset[]): DicomElement {
    return { tag, vr: 'SQ', bytes: new Uint8Array(0), littleEndian: true, items };
  },
};

/** Builds a dataset from elements. */
export function dataset(...elements: (DicomElement | undefined)[]): DicomDataset {
  const ds = new DicomDataset();
  for (const e of elements) if (e) ds.set(e);
  return ds;
}

class Out {
  chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  header(tag: number, vr: string | undefined, len: number): void {
    const long = vr === undefined || LONG_VRS.has(vr);
    const b = new Uint8Array(vr === undefined ? 8 : long ? 12 : 8);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, tag >>> 16, true);
    dv.setUint16(2, tag & 0xffff, true);
    if (vr === undefined)
      dv.setUint32(4, len, true); // item / delimiter
    else {
      b[4] = vr.charCodeAt(0);
      b[5] = vr.charCodeAt(1);
      if (long) dv.setUint32(8, len, true);
      else dv.setUint16(6, len, true);
    }
    this.push(b);
  }
}

function valueBytes(e: DicomElement): Uint8Array {
  let b = e.bytes;
  const w = binaryWidth(e.vr);
  if (!e.littleEndian && w > 1) {
    b = Uint8Array.from(b);
    for (let i = 0; i + w <= b.length; i += w) b.subarray(i, i + w).reverse();
  }
  if (b.length % 2) {
    const p = new Uint8Array(b.length + 1);
    p.set(b);
    b = p;
  }
  return b;
}

function writeDataset(out: Out, ds: DicomDataset): void {
  const tags = [...ds.elements.keys()].sort((a, b) => a - b);
  for (const tag of tags) {
    const e = ds.elements.get(tag)!;
    if ((tag & 0xffff) === 0 && tag >>> 16 !== 2) continue; // group lengths are retired: drop
    if (e.items) {
      const body = new Out();
      for (const it of e.items) {
        const item = new Out();
        writeDataset(item, it);
        body.header(T.Item, undefined, item.length);
        for (const c of item.chunks) body.push(c);
      }
      out.header(tag, 'SQ', body.length);
      for (const c of body.chunks) out.push(c);
    } else if (e.fragments) {
      out.header(tag, 'OB', 0xffffffff);
      const bot = e.offsetTable ?? new Uint8Array(0);
      out.header(T.Item, undefined, bot.length);
      out.push(bot);
      for (const f of e.fragments) {
        const fb = valueBytes({ ...e, bytes: f, vr: 'OB' });
        out.header(T.Item, undefined, fb.length);
        out.push(fb);
      }
      out.header(T.SequenceDelimitation, undefined, 0);
    } else {
      let vr = e.vr;
      const b = valueBytes(e);
      if (!LONG_VRS.has(vr) && b.length > 0xffff) vr = 'UN'; // cannot fit a 16-bit length
      out.header(tag, vr, b.length);
      out.push(b);
    }
  }
}

export interface WriteOptions {
  /** Transfer syntax written in the file meta; only Explicit VR LE (or an encapsulated syntax whose fragments are kept) is produced. */
  transferSyntaxUID?: string;
}

/** Serializes a dataset as a Part 10 file (preamble, DICM, file meta, Explicit VR Little Endian body). */
export function writeDicom(ds: DicomDataset, opts: WriteOptions = {}): Uint8Array {
  const ts = opts.transferSyntaxUID ?? TS.ExplicitLE;
  const meta = dataset(
    el.bytes(T.FileMetaInformationVersion, 'OB', new Uint8Array([0, 1])),
    el.str(T.MediaStorageSOPClassUID, 'UI', ds.string(T.SOPClassUID) ?? ''),
    el.str(T.MediaStorageSOPInstanceUID, 'UI', ds.string(T.SOPInstanceUID) ?? ''),
    el.str(T.TransferSyntaxUID, 'UI', ts),
    el.str(T.ImplementationClassUID, 'UI', IMPLEMENTATION_CLASS_UID),
    el.str(T.ImplementationVersionName, 'SH', IMPLEMENTATION_VERSION),
  );
  const metaOut = new Out();
  writeDataset(metaOut, meta);
  const body = new Out();
  const withoutMeta = new DicomDataset();
  withoutMeta.utf8 = ds.utf8;
  withoutMeta.charset = ds.charset;
  for (const [tag, e] of ds.elements) if (tag >>> 16 !== 2) withoutMeta.set(e);
  writeDataset(body, withoutMeta);
  const head = new Out();
  head.push(new Uint8Array(128));
  head.push(latin1Bytes('DICM'));
  head.push(valueHeaderUL(T.FileMetaInformationGroupLength, metaOut.length));
  const file = new Uint8Array(head.length + metaOut.length + body.length);
  let at = 0;
  for (const c of [...head.chunks, ...metaOut.chunks, ...body.chunks]) {
    file.set(c, at);
    at += c.length;
  }
  return file;
}

function valueHeaderUL(tag: number, v: number): Uint8Array {
  const b = new Uint8Array(12);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, tag >>> 16, true);
  dv.setUint16(2, tag & 0xffff, true);
  b[4] = 0x55; // 'U'
  b[5] = 0x4c; // 'L'
  dv.setUint16(6, 4, true);
  dv.setUint32(8, v, true);
  return b;
}
