/**
 * PALETTE COLOR images (PS3.3 C.7.6.3.1.5-6, C.7.9): the stored values index
 * three lookup tables, red, green and blue, read here from the Palette Color
 * Lookup Table module, plain or segmented, and applied to give planar RGB.
 *
 * Descriptor: [entries (0 means 65536), first mapped value (signed when the
 * pixels are), bits per entry]. Values below the first mapped value take the
 * first entry, those past the last take the last. Plain table data is OW;
 * its entry width is its length divided by the number of entries (8-bit
 * tables are often stored one entry per 16-bit word), which is also the
 * output sample width (uint8 or uint16), as pydicom's apply_color_lut does.
 * Segmented data (C.7.9.2) is a list of discrete (0), linear (1) and indirect
 * (2) segments in words of the descriptor's width; linear segments round
 * half to even, as pydicom does. Expansion is bounded (65536 entries,
 * nested indirect segments 4 deep) so hostile data gives CORRUPT, not a hang.
 */
import { MedsegIoError } from '../errors.ts';
import type { VoxelArray } from '../volume.ts';
import type { DicomDataset, DicomElement } from './dataset.ts';

const DESCRIPTOR = [0x00281101, 0x00281102, 0x00281103];
const DATA = [0x00281201, 0x00281202, 0x00281203];
const SEGMENTED = [0x00281221, 0x00281222, 0x00281223];
const MAX_ENTRIES = 65536;
const MAX_INDIRECT_DEPTH = 4;

export interface PaletteLut {
  /** Output sample type (the table's entry width). */
  type: 'uint8' | 'uint16';
  /** The stored value the first entry maps. */
  firstMapped: number;
  /** Red, green and blue tables. */
  tables: [Uint16Array, Uint16Array, Uint16Array];
}

function words(el: DicomElement, width: 1 | 2): number[] {
  const b = el.bytes;
  if (width === 1) return Array.from(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = new Array(b.byteLength >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = dv.getUint16(2 * i, el.littleEndian);
  return out;
}

/** numpy's around: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Expands segmented LUT data (words of the descriptor's width) into entries.
 * `segments` bounds an indirect copy; `last` is the entry before it.
 */
export function expandSegmentedLut(data: readonly number[], width: 1 | 2, path?: string, segments = Infinity, last?: number, depth = 0): number[] {
  const bad = (msg: string): never => {
    throw new MedsegIoError('CORRUPT', `segmented palette lookup table: ${msg}`, path);
  };
  if (depth > MAX_INDIRECT_DEPTH) bad(`indirect segments nested more than ${MAX_INDIRECT_DEPTH} deep`);
  const lut: number[] = [];
  let o = 0;
  let read = 0;
  const room = (n: number) => {
    if (lut.length + n > MAX_ENTRIES) bad(`expands past ${MAX_ENTRIES} entries`);
  };
  while (o + 1 < data.length && read < segments) {
    const opcode = data[o]!;
    const length = data[o + 1]!;
    o += 2;
    if (opcode === 0) {
      if (o + length > data.length) bad('a discrete segment runs past the data');
      room(length);
      for (let k = 0; k < length; k++) lut.push(data[o + k]!);
      o += length;
    } else if (opcode === 1) {
      const y0 = lut.length ? lut[lut.length - 1]! : last;
      if (y0 === undefined) bad('a linear segment comes first');
      if (o >= data.length) bad('a linear segment without its end value');
      const y1 = data[o++]!;
      room(length);
      const start = y0! + (y1 - y0!) / length;
      const step = length > 1 ? (y1 - start) / (length - 1) : 0;
      for (let k = 0; k < length; k++) lut.push(k === length - 1 ? y1 : roundHalfEven(k * step + start));
    } else if (opcode === 2) {
      if (!lut.length) bad('an indirect segment comes first');
      let offset: number;
      if (width === 1) {
        if (o + 4 > data.length) bad('an indirect segment without its offset');
        offset = (data[o]! | (data[o + 1]! << 8) | (data[o + 2]! << 16) | (data[o + 3]! << 24)) >>> 0;
        o += 4;
      } else {
        if (o + 2 > data.length) bad('an indirect segment without its offset');
        offset = data[o]! + data[o + 1]! * 65536;
        o += 2;
      }
      if (offset >= data.length) bad(`an indirect segment points past the data (${offset})`);
      const copied = expandSegmentedLut(data.slice(offset), width, path, length, lut[lut.length - 1], depth + 1);
      room(copied.length);
      for (const v of copied) lut.push(v);
    } else {
      bad(`unknown segment type ${opcode}`);
    }
    read++;
  }
  return lut;
}

/** The red, green and blue tables of a PALETTE COLOR dataset; CORRUPT / BAD_DATA when they are missing or inconsistent. */
export function readPaletteLut(ds: DicomDataset, pixelRepresentation: number, path?: string): PaletteLut {
  const descriptors = DESCRIPTOR.map((tag) => {
    const el = ds.get(tag);
    if (!el || el.bytes.length < 6) throw new MedsegIoError('BAD_DATA', 'PALETTE COLOR image without its palette lookup table descriptors', path);
    const dv = new DataView(el.bytes.buffer, el.bytes.byteOffset, el.bytes.byteLength);
    const entries = dv.getUint16(0, el.littleEndian) || MAX_ENTRIES;
    const first = pixelRepresentation === 1 ? dv.getInt16(2, el.littleEndian) : dv.getUint16(2, el.littleEndian);
    return { entries, first, bits: dv.getUint16(4, el.littleEndian) };
  });
  const d = descriptors[0]!;
  if (descriptors.some((x) => x.entries !== d.entries || x.first !== d.first)) {
    throw new MedsegIoError('CORRUPT', 'the red, green and blue palette descriptors differ', path);
  }
  if (d.bits !== 8 && d.bits !== 16) throw new MedsegIoError('UNSUPPORTED', `palette entries of ${d.bits} bits (8 or 16 are defined)`, path);
  let width: 1 | 2;
  let tables: number[][];
  if (DATA.every((t) => ds.has(t))) {
    const els = DATA.map((t) => ds.get(t)!);
    const bytes = els[0]!.bytes.length;
    if (els.some((e) => e.bytes.length !== bytes)) throw new MedsegIoError('CORRUPT', 'the palette tables differ in length', path);
    // The stored width, as the data's length says (8-bit entries may sit one per 16-bit word).
    const stored = bytes === d.entries ? 1 : bytes === 2 * d.entries ? 2 : 0;
    if (!stored) throw new MedsegIoError('CORRUPT', `palette table of ${bytes} bytes for ${d.entries} entries`, path);
    width = stored;
    tables = els.map((e) => words(e, stored));
  } else if (SEGMENTED.every((t) => ds.has(t))) {
    width = d.bits === 8 ? 1 : 2;
    tables = SEGMENTED.map((t) => expandSegmentedLut(words(ds.get(t)!, width), width, path));
    if (tables.some((t) => t.length !== tables[0]!.length || t.length === 0)) {
      throw new MedsegIoError('CORRUPT', 'the segmented palette tables expand to different or no lengths', path);
    }
  } else {
    throw new MedsegIoError('BAD_DATA', 'PALETTE COLOR image without red, green and blue palette data', path);
  }
  const n = Math.min(d.entries, tables[0]!.length);
  return {
    type: width === 1 ? 'uint8' : 'uint16',
    firstMapped: d.first,
    tables: tables.map((t) => Uint16Array.from(t.slice(0, n))) as PaletteLut['tables'],
  };
}

/** One frame of stored values -> planar RGB through the palette. */
export function applyPalette(frame: VoxelArray, lut: PaletteLut): VoxelArray {
  const n = frame.length;
  const out = lut.type === 'uint8' ? new Uint8Array(3 * n) : new Uint16Array(3 * n);
  const [r, g, b] = lut.tables;
  const last = r.length - 1;
  for (let i = 0; i < n; i++) {
    const k = Math.min(last, Math.max(0, frame[i]! - lut.firstMapped));
    out[i] = r[k]!;
    out[n + i] = g[k]!;
    out[2 * n + i] = b[k]!;
  }
  return out;
}
