/**
 * A small DICOM object model: elements keep a view of their value bytes (no
 * copy) plus the byte order they were read with; typed accessors decode on
 * demand. Used by the reader, the writer, SEG and de-identification.
 */
import { decodeDicomText, isSimpleCharset, TEXT_VRS } from './charset.ts';
import { tagHex } from './dictionary.ts';

export interface DicomElement {
  tag: number;
  vr: string;
  /** Raw value bytes (empty for sequences and encapsulated pixel data). */
  bytes: Uint8Array;
  littleEndian: boolean;
  /** Sequence items (VR SQ). */
  items?: DicomDataset[];
  /** Encapsulated pixel data: the fragments after the Basic Offset Table, plus that table. */
  fragments?: Uint8Array[];
  offsetTable?: Uint8Array;
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');
const BINARY_VRS: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, AT: 2, OW: 2, OF: 4, OD: 8, OL: 4, OV: 8, SV: 8, UV: 8 };

export class DicomDataset {
  readonly elements = new Map<number, DicomElement>();
  /** True when SpecificCharacterSet says ISO_IR 192 (UTF-8). */
  utf8 = false;
  /** SpecificCharacterSet values in force ([] for the default repertoire): text VRs are decoded in them (charset.ts). */
  charset: string[] = [];

  has(tag: number): boolean {
    return this.elements.has(tag);
  }
  get(tag: number): DicomElement | undefined {
    return this.elements.get(tag);
  }
  set(el: DicomElement): void {
    this.elements.set(el.tag, el);
  }
  delete(tag: number): void {
    this.elements.delete(tag);
  }

  /** All values of a string element (split on backslash), trimmed; [] when absent. */
  strings(tag: number): string[] {
    const el = this.elements.get(tag);
    if (!el || el.items || el.bytes.length === 0) return [];
    const text =
      this.utf8 || !TEXT_VRS.has(el.vr) || isSimpleCharset(this.charset)
        ? (this.utf8 ? utf8 : latin1).decode(el.bytes)
        : decodeDicomText(el.bytes, this.charset, el.vr === 'PN');
    if (el.vr === 'UT' || el.vr === 'LT' || el.vr === 'ST') return [text.replace(/[\0 ]+$/, '')];
    return text.split('\\').map((s) => s.replace(/^[\0 ]+|[\0 ]+$/g, ''));
  }

  string(tag: number): string | undefined {
    const s = this.strings(tag);
    return s.length ? s.join('\\') : undefined;
  }

  /** Numeric values of a DS/IS string or a binary numeric element. Non-numbers come back as NaN. */
  numbers(tag: number): number[] {
    const el = this.elements.get(tag);
    if (!el || el.items) return [];
    if (el.vr === 'DS' || el.vr === 'IS')
      return this.strings(tag)
        .filter((s) => s !== '')
        .map(Number);
    return binaryNumbers(el);
  }

  number(tag: number): number | undefined {
    const v = this.numbers(tag);
    return v.length ? v[0] : undefined;
  }

  /** Items of a sequence; [] when absent or not a sequence. */
  seq(tag: number): DicomDataset[] {
    return this.elements.get(tag)?.items ?? [];
  }

  /** First item of a sequence. */
  item(tag: number): DicomDataset | undefined {
    return this.seq(tag)[0];
  }
}

export function binaryNumbers(el: DicomElement): number[] {
  const width = BINARY_VRS[el.vr];
  if (!width) return [];
  const b = el.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = Math.floor(b.byteLength / width);
  const le = el.littleEndian;
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * width;
    switch (el.vr) {
      case 'US':
      case 'OW':
        out[i] = dv.getUint16(o, le);
        break;
      case 'SS':
        out[i] = dv.getInt16(o, le);
        break;
      case 'UL':
      case 'OL':
        out[i] = dv.getUint32(o, le);
        break;
      case 'SL':
        out[i] = dv.getInt32(o, le);
        break;
      case 'FL':
      case 'OF':
        out[i] = dv.getFloat32(o, le);
        break;
      case 'FD':
      case 'OD':
        out[i] = dv.getFloat64(o, le);
        break;
      case 'AT':
        out[i] = dv.getUint16(o, le);
        break; // AT as pairs of uint16 (group, element)
      case 'SV':
        out[i] = Number(dv.getBigInt64(o, le));
        break;
      case 'UV':
      case 'OV':
        out[i] = Number(dv.getBigUint64(o, le));
        break;
    }
  }
  return out;
}

/** Byte width of a binary VR (0 for strings/OB/UN/SQ): the writer swaps these when converting byte order. */
export function binaryWidth(vr: string): number {
  return BINARY_VRS[vr] ?? 0;
}

export { tagHex };
