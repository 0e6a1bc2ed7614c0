/**
 * DICOM Part 10 parser, hand-written rather than dcmjs's DicomMessage because
 * it must be safe on hostile files: every length is checked against the bytes
 * that are really there (TRUNCATED instead of an out-of-range read), nesting
 * and element counts are bounded, deflate output is capped, and values stay
 * views into the file buffer (no per-element copies, which also makes it
 * several times faster than building dcmjs's naturalized JSON for a 512² CT).
 *
 * Transfer syntaxes at the byte level: Implicit VR Little Endian, Explicit VR
 * Little Endian, Explicit VR Big Endian (retired but still seen), Deflated
 * Explicit VR Little Endian, and every encapsulated syntax (fragments are
 * collected; decoding them is pixels.ts's job). Files without the 128-byte
 * preamble + 'DICM' are accepted when they start like a raw dataset.
 */
import { Inflate } from 'fflate';
import { MedsegIoError, type ReadLimits } from '../errors.ts';
import { DicomDataset, type DicomElement } from './dataset.ts';
import { T, tagHex, vrOfTag } from './dictionary.ts';

export const TS = {
  ImplicitLE: '1.2.840.10008.1.2',
  ExplicitLE: '1.2.840.10008.1.2.1',
  DeflatedLE: '1.2.840.10008.1.2.1.99',
  ExplicitBE: '1.2.840.10008.1.2.2',
  JpegBaseline: '1.2.840.10008.1.2.4.50',
  JpegExtended: '1.2.840.10008.1.2.4.51',
  JpegLossless: '1.2.840.10008.1.2.4.57',
  JpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  JpegLsLossless: '1.2.840.10008.1.2.4.80',
  JpegLsNear: '1.2.840.10008.1.2.4.81',
  J2kLossless: '1.2.840.10008.1.2.4.90',
  J2k: '1.2.840.10008.1.2.4.91',
  Htj2kLossless: '1.2.840.10008.1.2.4.201',
  Htj2kLosslessRpcl: '1.2.840.10008.1.2.4.202',
  Htj2k: '1.2.840.10008.1.2.4.203',
  Rle: '1.2.840.10008.1.2.5',
} as const;

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const ALL_VRS = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FL',
  'FD',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
]);
const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 12;
const MAX_ELEMENTS = 2_000_000;

export interface ParsedDicom {
  /** File meta information (group 0002); empty for files without a preamble. */
  meta: DicomDataset;
  dataset: DicomDataset;
  transferSyntaxUID: string;
  /** Whether the file had the 128-byte preamble and 'DICM'. */
  part10: boolean;
}

export interface ParseOptions {
  path?: string;
  limits?: Pick<ReadLimits, 'maxDecompressedBytes'>;
  /** Stop before this tag (e.g. T.PixelData to read headers only). */
  untilTag?: number;
}

interface Ctx {
  buf: Uint8Array;
  dv: DataView;
  explicit: boolean;
  le: boolean;
  path?: string;
  count: number;
  utf8: boolean;
  /** SpecificCharacterSet values in force ([] for the default repertoire). */
  charset: string[];
}

/**
 * Raw DEFLATE (the Deflated Explicit VR Little Endian syntax), refused once
 * the output passes max bytes. fflate rather than node:zlib: the parser also
 * runs in the browser (the viewer's SEG), and these datasets are small.
 */
function inflateBounded(data: Uint8Array, max: number, path?: string): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let ended = false;
  const inflate = new Inflate((chunk, final) => {
    total += chunk.length;
    if (total > max) throw new MedsegIoError('TOO_LARGE', `deflated dataset inflates past ${max} bytes`, path);
    chunks.push(chunk);
    ended ||= final;
  });
  try {
    inflate.push(data, true);
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    throw new MedsegIoError('CORRUPT', `deflated dataset does not inflate: ${(e as Error).message}`, path);
  }
  if (!ended) throw new MedsegIoError('CORRUPT', 'deflated dataset does not inflate: the stream ends early', path);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** True when the bytes start like a DICOM file (Part 10 or a bare dataset). */
export function looksLikeDicom(buf: Uint8Array): boolean {
  if (buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d) return true;
  return buf.length >= 8 && buf[1] === 0 && (buf[0] === 0x08 || buf[0] === 0x02) && buf[3] === 0;
}

export function parseDicom(buf: Uint8Array, opts: ParseOptions = {}): ParsedDicom {
  const path = opts.path;
  let pos = 0;
  let part10 = false;
  if (buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d) {
    part10 = true;
    pos = 132;
  } else if (!looksLikeDicom(buf)) {
    throw new MedsegIoError('BAD_MAGIC', 'not a DICOM file (no DICM marker and no dataset at the start)', path);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const meta = new DicomDataset();
  let transferSyntaxUID = TS.ImplicitLE as string;
  if (part10 || (buf[0] === 0x02 && buf[1] === 0)) {
    // File meta: always Explicit VR Little Endian; read while the group is 0002.
    const ctx: Ctx = { buf, dv, explicit: true, le: true, path, count: 0, utf8: false, charset: [] };
    pos = readElements(ctx, meta, pos, buf.length, 0, 0x00030000);
    const ts = meta.string(T.TransferSyntaxUID);
    if (ts) transferSyntaxUID = ts.replace(/\0/g, '').trim();
    else if (part10) throw new MedsegIoError('CORRUPT', 'file meta has no Transfer Syntax UID', path);
  } else if (isExplicitAt(buf, pos)) {
    transferSyntaxUID = TS.ExplicitLE; // bare dataset written explicit: sniffed from the first VR
  }

  let body = buf;
  let bodyStart = pos;
  let explicit = true;
  let le = true;
  switch (transferSyntaxUID) {
    case TS.ImplicitLE:
      explicit = false;
      break;
    case TS.ExplicitBE:
      le = false;
      break;
    case TS.DeflatedLE: {
      const max = Math.min(opts.limits?.maxDecompressedBytes ?? 4 * 1024 ** 3, 2 ** 31 - 1);
      body = inflateBounded(buf.subarray(pos), max, path);
      bodyStart = 0;
      break;
    }
    default:
      break; // every other syntax (encapsulated) is Explicit VR Little Endian
  }
  const dataset = new DicomDataset();
  const ctx: Ctx = {
    buf: body,
    dv: body === buf ? dv : new DataView(body.buffer, body.byteOffset, body.byteLength),
    explicit,
    le,
    path,
    count: 0,
    utf8: false,
    charset: [],
  };
  readElements(ctx, dataset, bodyStart, body.length, 0, opts.untilTag ?? UNDEFINED + 1);
  return { meta, dataset, transferSyntaxUID, part10 };
}

function isExplicitAt(buf: Uint8Array, pos: number): boolean {
  if (buf.length < pos + 6) return false;
  const vr = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!);
  return ALL_VRS.has(vr);
}

function fail(ctx: Ctx, code: 'TRUNCATED' | 'CORRUPT' | 'TOO_LARGE', msg: string): never {
  throw new MedsegIoError(code, msg, ctx.path);
}

/** Reads elements into ds from pos up to end (or a delimiter); returns the position after the last one read. */
function readElements(ctx: Ctx, ds: DicomDataset, pos: number, end: number, depth: number, stopTag: number): number {
  const { buf, dv } = ctx;
  while (pos < end) {
    if (pos + 8 > end) fail(ctx, 'TRUNCATED', `element header cut at byte ${pos}`);
    const group = dv.getUint16(pos, ctx.le);
    const elem = dv.getUint16(pos + 2, ctx.le);
    const tag = ((group << 16) | elem) >>> 0;
    if (tag >= stopTag) return pos;
    if (tag === T.ItemDelimitation || tag === T.SequenceDelimitation) return pos;
    if (++ctx.count > MAX_ELEMENTS) fail(ctx, 'TOO_LARGE', `more than ${MAX_ELEMENTS} elements`);
    let vr: string;
    let length: number;
    let hdr: number;
    if (ctx.explicit && group !== 0xfffe) {
      vr = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!);
      if (!ALL_VRS.has(vr)) {
        fail(ctx, 'CORRUPT', `invalid VR '${vr.replace(/[^\x20-\x7e]/g, '?')}' for tag ${tagHex(tag)} at byte ${pos}`);
      }
      if (LONG_VRS.has(vr)) {
        if (pos + 12 > end) fail(ctx, 'TRUNCATED', `element header cut at byte ${pos}`);
        length = dv.getUint32(pos + 8, ctx.le);
        hdr = 12;
      } else {
        length = dv.getUint16(pos + 6, ctx.le);
        hdr = 8;
      }
    } else {
      vr = group === 0xfffe ? 'UN' : vrOfTag(tag);
      length = dv.getUint32(pos + 4, ctx.le);
      hdr = 8;
    }
    pos += hdr;
    if (group === 0xfffe) {
      // A stray item outside a sequence: skip it when it has a length, else the file is broken.
      if (length === UNDEFINED || pos + length > end) fail(ctx, 'CORRUPT', `unexpected item tag at byte ${pos - hdr}`);
      pos += length;
      continue;
    }
    const el: DicomElement = { tag, vr, bytes: EMPTY, littleEndian: ctx.le };
    if (tag === T.PixelData && length === UNDEFINED) {
      pos = readFragments(ctx, el, pos, end);
    } else if (vr === 'SQ' || (length === UNDEFINED && (vr === 'UN' || !ctx.explicit))) {
      el.vr = 'SQ';
      el.items = [];
      pos = readSequence(ctx, el.items, pos, length, end, depth);
    } else {
      if (length === UNDEFINED) fail(ctx, 'CORRUPT', `undefined length on non-sequence ${tagHex(tag)}`);
      if (pos + length > end) fail(ctx, 'TRUNCATED', `${tagHex(tag)} needs ${length} bytes, only ${end - pos} left`);
      el.bytes = buf.subarray(pos, pos + length);
      pos += length;
      // Explicit 'UN' on a standard tag (some converters write it for attributes they could not type):
      // the value bytes are encoded as the dictionary VR says (PS3.5 6.2.2), so read them as that VR.
      if (vr === 'UN' && ctx.explicit) {
        const known = vrOfTag(tag);
        if (known !== 'UN' && known !== 'SQ') el.vr = known;
      }
      if (tag === T.SpecificCharacterSet) {
        ctx.charset = new TextDecoder('latin1')
          .decode(el.bytes)
          .split('\\')
          .map((t) => t.replace(/^[\0 ]+|[\0 ]+$/g, ''));
        ctx.utf8 = ctx.charset[0] === 'ISO_IR 192';
      }
    }
    ds.set(el);
  }
  ds.utf8 = ctx.utf8;
  ds.charset = ctx.charset;
  return pos;
}

const EMPTY = new Uint8Array(0);

function readSequence(ctx: Ctx, items: DicomDataset[], pos: number, length: number, end: number, depth: number): number {
  if (depth >= MAX_DEPTH) fail(ctx, 'CORRUPT', `sequences nested deeper than ${MAX_DEPTH}`);
  const seqEnd = length === UNDEFINED ? end : pos + length;
  if (seqEnd > end) fail(ctx, 'TRUNCATED', `sequence of ${length} bytes runs past the end of its parent`);
  const { dv } = ctx;
  while (pos < seqEnd) {
    if (pos + 8 > seqEnd) fail(ctx, 'TRUNCATED', `sequence item header cut at byte ${pos}`);
    const tag = ((dv.getUint16(pos, ctx.le) << 16) | dv.getUint16(pos + 2, ctx.le)) >>> 0;
    const itemLen = dv.getUint32(pos + 4, ctx.le);
    pos += 8;
    if (tag === T.SequenceDelimitation) return pos;
    if (tag !== T.Item) fail(ctx, 'CORRUPT', `expected an item in a sequence, found ${tagHex(tag)} at byte ${pos - 8}`);
    if (++ctx.count > MAX_ELEMENTS) fail(ctx, 'TOO_LARGE', `more than ${MAX_ELEMENTS} elements`);
    const item = new DicomDataset();
    const saveUtf8 = ctx.utf8;
    const saveCharset = ctx.charset;
    if (itemLen === UNDEFINED) {
      pos = readElements(ctx, item, pos, seqEnd, depth + 1, UNDEFINED + 1);
      if (pos + 8 > seqEnd) fail(ctx, 'TRUNCATED', 'sequence item without its delimiter');
      const t = ((dv.getUint16(pos, ctx.le) << 16) | dv.getUint16(pos + 2, ctx.le)) >>> 0;
      if (t !== T.ItemDelimitation) fail(ctx, 'CORRUPT', `item not closed by an item delimiter at byte ${pos}`);
      pos += 8;
    } else {
      if (pos + itemLen > seqEnd) fail(ctx, 'TRUNCATED', `item of ${itemLen} bytes runs past its sequence`);
      const stop = readElements(ctx, item, pos, pos + itemLen, depth + 1, UNDEFINED + 1);
      if (stop !== pos + itemLen) fail(ctx, 'CORRUPT', `delimiter inside a defined-length item at byte ${stop}`);
      pos += itemLen;
    }
    item.utf8 = ctx.utf8;
    item.charset = ctx.charset;
    ctx.utf8 = saveUtf8;
    ctx.charset = saveCharset;
    items.push(item);
  }
  if (length === UNDEFINED) fail(ctx, 'TRUNCATED', 'sequence without its delimiter');
  return pos;
}

function readFragments(ctx: Ctx, el: DicomElement, pos: number, end: number): number {
  const { dv, buf } = ctx;
  el.fragments = [];
  let first = true;
  for (;;) {
    if (pos + 8 > end) fail(ctx, 'TRUNCATED', 'encapsulated pixel data without its sequence delimiter');
    const tag = ((dv.getUint16(pos, ctx.le) << 16) | dv.getUint16(pos + 2, ctx.le)) >>> 0;
    const len = dv.getUint32(pos + 4, ctx.le);
    pos += 8;
    if (tag === T.SequenceDelimitation) return pos;
    if (tag !== T.Item) fail(ctx, 'CORRUPT', `expected a pixel data fragment, found ${tagHex(tag)}`);
    if (len === UNDEFINED || pos + len > end) fail(ctx, 'TRUNCATED', `pixel data fragment of ${len} bytes runs past the end`);
    if (++ctx.count > MAX_ELEMENTS) fail(ctx, 'TOO_LARGE', `more than ${MAX_ELEMENTS} fragments`);
    const frag = buf.subarray(pos, pos + len);
    if (first) el.offsetTable = frag;
    else el.fragments.push(frag);
    first = false;
    pos += len;
  }
}
