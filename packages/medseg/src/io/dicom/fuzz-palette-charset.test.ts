/**
 * Seeded fuzzing of the palette and character-set entry points: mutated
 * PALETTE COLOR files (plain 16-bit tables, segmented 16- and 8-bit tables
 * using every segment type) through the series reader, random segmented
 * table data through expandSegmentedLut, mutated files in ISO 2022, UTF-8 and
 * GB18030 text through the parser and every text element's decoding, and
 * random bytes with escape sequences through decodeDicomText under every
 * Specific Character Set. A result must be structurally valid or a
 * MedsegIoError (decodeDicomText never throws); anything else fails, and a
 * hang fails through the timeout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import iconv from 'iconv-lite';
import { fuzzOutcome, mutateDicomBytes } from '../../testing/dicom-mutate.ts';
import { seededRandom } from '../../util/random.ts';
import { decodeDicomText } from './charset.ts';
import type { DicomDataset } from './dataset.ts';
import { T } from './dictionary.ts';
import { expandSegmentedLut } from './palette.ts';
import { parseDicom } from './parse.ts';
import { readDicomSeriesFromBuffers } from './series.ts';
import { dataset, el, writeDicom } from './write.ts';

const LIMITS = { maxBytes: 8 * 2 ** 20, maxDecompressedBytes: 16 * 2 ** 20 };
const SIDE = 16;

function words16(values: number[]): Uint8Array {
  const b = new Uint8Array(2 * values.length);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setUint16(2 * i, v & 0xffff, true));
  return b;
}

/** A 16x16 PALETTE COLOR image with the given table elements. */
function paletteFile(bits: 8 | 16, descriptor: number[], tables: { tag: number; bytes: Uint8Array }[], seed: number): Uint8Array {
  const r = seededRandom(seed);
  const px =
    bits === 8
      ? Uint8Array.from({ length: SIDE * SIDE }, () => Math.floor(r() * 256))
      : words16(Array.from({ length: SIDE * SIDE }, () => Math.floor(r() * 4096)));
  return writeDicom(
    dataset(
      el.str(T.SOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
      el.str(T.SOPInstanceUID, 'UI', `2.25.${seed}`),
      el.str(T.SeriesInstanceUID, 'UI', '2.25.77'),
      el.str(T.Modality, 'CS', 'OT'),
      el.nums(T.SamplesPerPixel, 'US', [1]),
      el.str(T.PhotometricInterpretation, 'CS', 'PALETTE COLOR'),
      el.nums(T.Rows, 'US', [SIDE]),
      el.nums(T.Columns, 'US', [SIDE]),
      el.nums(T.BitsAllocated, 'US', [bits]),
      el.nums(T.BitsStored, 'US', [bits === 8 ? 8 : 12]),
      el.nums(T.HighBit, 'US', [bits === 8 ? 7 : 11]),
      el.nums(T.PixelRepresentation, 'US', [0]),
      ...[0x00281101, 0x00281102, 0x00281103].map((tag) => el.nums(tag, 'US', descriptor)),
      ...tables.map((t) => el.bytes(t.tag, 'OW', t.bytes)),
      el.bytes(T.PixelData, bits === 8 ? 'OB' : 'OW', px),
    ),
  );
}

/** Segmented data with a discrete, a linear and an indirect segment (copying the first two). */
const SEGMENTED16 = [0, 3, 0, 9000, 20000, 1, 4000, 65535, 2, 2, 0, 0, 1, 100, 0];
const SEGMENTED8 = [0, 2, 0, 40, 1, 200, 255, 2, 1, 0, 0, 0, 0, 1, 50, 0];

const SEEDS = [
  paletteFile(
    16,
    [4096, 0, 16],
    [0x00281201, 0x00281202, 0x00281203].map((tag, c) => ({ tag, bytes: words16(Array.from({ length: 4096 }, (_, i) => (i * (c + 3)) & 0xffff)) })),
    1,
  ),
  paletteFile(
    16,
    [0, 0, 16],
    [0x00281221, 0x00281222, 0x00281223].map((tag) => ({ tag, bytes: words16(SEGMENTED16) })),
    2,
  ),
  paletteFile(
    8,
    [256, 0, 8],
    [0x00281221, 0x00281222, 0x00281223].map((tag) => ({ tag, bytes: Uint8Array.from(SEGMENTED8) })),
    3,
  ),
];

/** Text files: Japanese, Korean and Latin/Cyrillic ISO 2022, UTF-8 and GB18030, with names in sequences too. */
function textFile(charset: string, name: Uint8Array, description: Uint8Array): Uint8Array {
  const item = dataset(el.bytes(T.PatientName, 'PN', name), el.bytes(0x00081030, 'LO', description));
  return writeDicom(
    dataset(
      el.str(T.SpecificCharacterSet, 'CS', charset),
      el.str(T.SOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
      el.str(T.SOPInstanceUID, 'UI', '2.25.5'),
      el.bytes(T.PatientName, 'PN', name),
      el.bytes(0x00081030, 'LO', description),
      el.seq(T.ReferencedSeriesSequence, [item]),
    ),
  );
}
const b = (...parts: (string | Uint8Array)[]) =>
  Uint8Array.from(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)))));
const ESC = '\x1b';
const TEXT_SEEDS = [
  textFile(
    '\\ISO 2022 IR 87',
    b(
      'Yamada^Tarou=',
      ESC,
      '$B',
      iconv.encode('山田', 'euc-jp').map((x) => x & 0x7f),
      ESC,
      '(B^',
      ESC,
      '$B',
      iconv.encode('太郎', 'euc-jp').map((x) => x & 0x7f),
      ESC,
      '(B',
    ),
    b(
      ESC,
      '$B',
      iconv.encode('胸部', 'euc-jp').map((x) => x & 0x7f),
      ESC,
      '(B',
    ),
  ),
  textFile(
    'ISO 2022 IR 13\\ISO 2022 IR 87',
    b(iconv.encode('ﾔﾏﾀﾞ', 'shift_jis'), '^', ESC, '$(D', Buffer.from([0x30, 0x21]), ESC, '(J'),
    b(iconv.encode('ｷｮｳﾌﾞ', 'shift_jis')),
  ),
  textFile(
    '\\ISO 2022 IR 149',
    b('Hong=', ESC, '$)C', iconv.encode('홍', 'euc-kr'), '^', ESC, '$)C', iconv.encode('길동', 'euc-kr')),
    b(ESC, '$)A', iconv.encode('检查', 'gb2312')),
  ),
  textFile('ISO 2022 IR 100\\ISO 2022 IR 144', b('M', Buffer.from([0xfc]), 'ller^', ESC, '-L', Buffer.from([0xbb, 0xee, 0xda])), b('Gr', Buffer.from([0xfc]))),
  textFile('ISO_IR 192', b(Buffer.from('王^小東', 'utf8')), b(Buffer.from('胸部 CT', 'utf8'))),
  textFile('GB18030', b(iconv.encode('王^小东', 'gb18030')), b(iconv.encode('胸部检查', 'gb18030'))),
];

const CHARSETS = [
  [],
  ['ISO_IR 100'],
  ['ISO_IR 192'],
  ['GB18030'],
  ['GBK'],
  ['ISO_IR 13'],
  ['ISO_IR 166'],
  ['', 'ISO 2022 IR 87'],
  ['ISO 2022 IR 13', 'ISO 2022 IR 87'],
  ['', 'ISO 2022 IR 87', 'ISO 2022 IR 159'],
  ['', 'ISO 2022 IR 149'],
  ['', 'ISO 2022 IR 58'],
  ['ISO 2022 IR 100', 'ISO 2022 IR 144', 'ISO 2022 IR 126'],
  ['ISO_IR 999'],
];
const ESCAPES = ['(B', '(J', ')I', '$B', '$(D', '$)C', '$)A', '-A', '-L', '-F', '-T', '$', '(', '%G'];

function walkText(ds: DicomDataset): number {
  let n = 0;
  for (const e of ds.elements.values()) {
    if (e.items) for (const item of e.items) n += walkText(item);
    else if (['PN', 'LO', 'SH', 'ST', 'LT', 'UT', 'UC', 'CS', 'UI'].includes(e.vr)) {
      for (const s of ds.strings(e.tag)) assert.equal(typeof s, 'string');
      n++;
    }
  }
  return n;
}

describe('palette and character-set fuzz', { timeout: 120_000 }, () => {
  it('the seeds are valid: each palette file reads as RGB, each text file decodes', async () => {
    for (const s of SEEDS) {
      const v = await readDicomSeriesFromBuffers([{ name: 'seed', bytes: s }]);
      assert.equal(v.channels, 3);
      assert.ok(new Set(v.data).size > 2);
    }
    assert.match(parseDicom(TEXT_SEEDS[0]!).dataset.string(T.PatientName) ?? '', /^Yamada\^Tarou=山田\^太郎$/);
    assert.equal(parseDicom(TEXT_SEEDS[2]!).dataset.string(T.PatientName), 'Hong=홍^길동');
  });

  it('2000 mutated PALETTE COLOR files: RGB of the right size or a typed error', async () => {
    const codes: Record<string, number> = {};
    for (let seed = 0; seed < 2000; seed++) {
      const r = seededRandom(10_000 + seed);
      const src = SEEDS[seed % SEEDS.length]!;
      let bytes: Uint8Array;
      if (r() < 0.5) bytes = mutateDicomBytes(src, r);
      else {
        // Rewrite words of the table data or the descriptors: opcodes, lengths, offsets, entry counts.
        const f = parseDicom(src);
        for (const tag of [0x00281101, 0x00281201, 0x00281221, 0x00281222]) {
          const e = f.dataset.get(tag);
          if (!e || r() < 0.4) continue;
          const copy = Uint8Array.from(e.bytes);
          for (let k = 1 + Math.floor(r() * 4); k > 0; k--)
            copy[Math.floor(r() * copy.length)] = [0, 1, 2, 3, 255, Math.floor(r() * 256)][Math.floor(r() * 6)]!;
          f.dataset.set({ ...e, bytes: copy });
        }
        bytes = writeDicom(f.dataset);
      }
      const c = await fuzzOutcome(async () => {
        const v = await readDicomSeriesFromBuffers([{ name: `palette#${seed}`, bytes }], { limits: LIMITS });
        assert.equal(v.data.length, v.size[0] * v.size[1] * v.size[2] * v.channels);
      }, `palette seed ${seed}`);
      codes[c] = (codes[c] ?? 0) + 1;
    }
    console.log(JSON.stringify(codes));
    assert.ok((codes.ok ?? 0) > 100 && Object.keys(codes).length > 2, JSON.stringify(codes));
  });

  it('5000 random segmented tables: at most 65536 entries or CORRUPT', async () => {
    const codes: Record<string, number> = {};
    for (let seed = 0; seed < 5000; seed++) {
      const r = seededRandom(50_000 + seed);
      const width = r() < 0.5 ? 1 : 2;
      const max = width === 1 ? 256 : 65536;
      const int = (n: number) => Math.floor(r() * n);
      // Mostly well-formed segment lists (a discrete segment, then any type), then a few words overwritten.
      const data = [0, 1 + int(4)];
      for (let k = data[1]!; k > 0; k--) data.push(int(max));
      for (let k = int(6); k > 0; k--) {
        const op = r() < 0.9 ? int(3) : int(max);
        const len = int(r() < 0.9 ? 24 : max);
        data.push(op, len);
        if (op === 0) for (let j = 0; j < Math.min(len, 64); j++) data.push(int(max));
        else if (op === 1) data.push(int(max));
        else if (op === 2)
          data.push(...(width === 2 ? [int(data.length + 4), r() < 0.9 ? 0 : int(max)] : [int(data.length + 4), 0, 0, r() < 0.9 ? 0 : int(max)]));
      }
      for (let k = int(3); k > 0; k--) data[int(data.length)] = r() < 0.5 ? int(4) : int(max);
      const c = await fuzzOutcome(
        () => {
          const lut = expandSegmentedLut(data, width);
          assert.ok(lut.length <= 65536 && lut.every((v) => Number.isFinite(v)));
        },
        `segments ${JSON.stringify(data)}`,
      );
      codes[c] = (codes[c] ?? 0) + 1;
    }
    console.log(JSON.stringify(codes));
    assert.ok((codes.ok ?? 0) > 500 && (codes.CORRUPT ?? 0) > 500, JSON.stringify(codes));
  });

  it('3000 mutated text files: every text element decodes or the parse fails typed', async () => {
    const codes: Record<string, number> = {};
    for (let seed = 0; seed < 3000; seed++) {
      const r = seededRandom(90_000 + seed);
      const bytes = mutateDicomBytes(TEXT_SEEDS[seed % TEXT_SEEDS.length]!, r);
      const c = await fuzzOutcome(() => walkText(parseDicom(bytes, { limits: LIMITS }).dataset), `text seed ${seed}`);
      codes[c] = (codes[c] ?? 0) + 1;
    }
    console.log(JSON.stringify(codes));
    assert.ok((codes.ok ?? 0) > 300, JSON.stringify(codes));
  });

  it('10000 random byte strings with escape sequences decode to text under every character set', () => {
    for (let seed = 0; seed < 10_000; seed++) {
      const r = seededRandom(200_000 + seed);
      const parts: Buffer[] = [];
      for (let k = Math.floor(r() * 8); k >= 0; k--) {
        if (r() < 0.3) parts.push(Buffer.from(`\x1b${ESCAPES[Math.floor(r() * ESCAPES.length)]}`, 'latin1'));
        parts.push(
          Buffer.from(Array.from({ length: Math.floor(r() * 12) }, () => (r() < 0.2 ? [0x5c, 0x5e, 0x3d, 0x0d][Math.floor(r() * 4)]! : Math.floor(r() * 256)))),
        );
      }
      const bytes = Uint8Array.from(Buffer.concat(parts));
      const terms = CHARSETS[seed % CHARSETS.length]!;
      const text = decodeDicomText(bytes, terms, seed % 2 === 0);
      assert.equal(typeof text, 'string');
      assert.ok(text.length <= 2 * bytes.length + 2, `${text.length} characters from ${bytes.length} bytes`);
    }
  });
});
