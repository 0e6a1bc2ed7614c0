/**
 * Text of DICOM string elements in their Specific Character Set (PS3.5 6.1,
 * PS3.3 C.12.1.1.2): the single-byte sets (ISO_IR 6 / 100 / 101 / 109 / 110 /
 * 126 / 127 / 138 / 144 / 148 / 166 / 13), the multi-byte sets without code
 * extensions (ISO_IR 192 UTF-8, GB18030, GBK), and ISO 2022 code extensions:
 * escape sequences switch G0 (bytes below 0x80) or G1 (0x80 and above) between
 * ASCII, JIS X 0201, JIS X 0208 (ISO 2022 IR 87), JIS X 0212 (IR 159), KS X
 * 1001 (IR 149), GB 2312 (IR 58) and the ISO 8859 parts. The byte tables are
 * iconv-lite's (npm); this file only follows the escape sequences.
 *
 * Each value starts in the sets of the first SpecificCharacterSet value, and
 * they are active again after a backslash, CR, LF, TAB, FF and, in person
 * names, '^' and '=' (PS3.5 6.1.2.5.3): writers escape back before those,
 * and a reader that resets there recovers from one that does not. Bytes that
 * are not valid in their set become U+FFFD; unknown terms fall back to
 * ISO_IR 100 (Latin-1), as most readers do.
 */
import iconv from 'iconv-lite';
import type { DicomDataset } from './dataset.ts';

/** How the bytes of one set are turned into text: a whole-run decoder (iconv-lite name) and whether it is a 94² set shifted into G1 form. */
interface CodeElement {
  encoding: string;
  /** A two-byte 94² set designated to G0 (7-bit bytes): set the high bit of each byte and decode as EUC. */
  sevenBitMultiByte?: boolean;
  /** Prefix byte for each character of a G0 94² set decoded as EUC (0x8f: JIS X 0212 in EUC-JP). */
  eucPrefix?: number;
}

const ASCII: CodeElement = { encoding: 'latin1' };
const LATIN1: CodeElement = { encoding: 'latin1' };

/** Single-byte sets by the number in ISO_IR nnn / ISO 2022 IR nnn: the G1 half (and ASCII in G0). */
const SINGLE_BYTE: Record<string, CodeElement> = {
  '100': { encoding: 'latin1' },
  '101': { encoding: 'iso-8859-2' },
  '109': { encoding: 'iso-8859-3' },
  '110': { encoding: 'iso-8859-4' },
  '144': { encoding: 'iso-8859-5' },
  '127': { encoding: 'iso-8859-6' },
  '126': { encoding: 'iso-8859-7' },
  '138': { encoding: 'iso-8859-8' },
  '148': { encoding: 'iso-8859-9' },
  '166': { encoding: 'tis620' },
  // JIS X 0201: Katakana in G1 (0xA1-0xDF are the same bytes in Shift JIS), Romaji in G0.
  '13': { encoding: 'shift_jis' },
};

/** Sets used without code extensions that are multi-byte throughout. */
const WHOLE: Record<string, string> = { 'ISO_IR 192': 'utf8', GB18030: 'gb18030', GBK: 'gbk' };

/** The G0 and G1 sets a SpecificCharacterSet term designates. */
function designation(term: string): { g0: CodeElement; g1: CodeElement } {
  const t = term.trim();
  const m = /^ISO(?:_| 2022 )IR (\d+)$/.exec(t);
  const n = m?.[1];
  if (!t || n === '6') return { g0: ASCII, g1: LATIN1 };
  if (n === '13') return { g0: { encoding: 'shift_jis' }, g1: SINGLE_BYTE['13']! };
  if (n && SINGLE_BYTE[n]) return { g0: ASCII, g1: SINGLE_BYTE[n]! };
  if (n === '87') return { g0: { encoding: 'euc-jp', sevenBitMultiByte: true }, g1: LATIN1 };
  if (n === '159') return { g0: { encoding: 'euc-jp', sevenBitMultiByte: true, eucPrefix: 0x8f }, g1: LATIN1 };
  if (n === '149') return { g0: ASCII, g1: { encoding: 'euc-kr' } };
  if (n === '58') return { g0: ASCII, g1: { encoding: 'gb2312' } };
  return { g0: ASCII, g1: LATIN1 };
}

/** Escape sequences (after ESC) -> which half they designate and the set. */
const ESCAPES: [bytes: number[], half: 0 | 1, set: CodeElement][] = [
  [[0x28, 0x42], 0, ASCII], // ( B
  [[0x28, 0x4a], 0, { encoding: 'shift_jis' }], // ( J  JIS X 0201 Romaji
  [[0x29, 0x49], 1, SINGLE_BYTE['13']!], // ) I  JIS X 0201 Katakana
  [[0x24, 0x42], 0, { encoding: 'euc-jp', sevenBitMultiByte: true }], // $ B  JIS X 0208
  [[0x24, 0x28, 0x44], 0, { encoding: 'euc-jp', sevenBitMultiByte: true, eucPrefix: 0x8f }], // $ ( D  JIS X 0212
  [[0x24, 0x29, 0x43], 1, { encoding: 'euc-kr' }], // $ ) C  KS X 1001
  [[0x24, 0x29, 0x41], 1, { encoding: 'gb2312' }], // $ ) A  GB 2312
  [[0x2d, 0x41], 1, SINGLE_BYTE['100']!],
  [[0x2d, 0x42], 1, SINGLE_BYTE['101']!],
  [[0x2d, 0x43], 1, SINGLE_BYTE['109']!],
  [[0x2d, 0x44], 1, SINGLE_BYTE['110']!],
  [[0x2d, 0x4c], 1, SINGLE_BYTE['144']!],
  [[0x2d, 0x47], 1, SINGLE_BYTE['127']!],
  [[0x2d, 0x46], 1, SINGLE_BYTE['126']!],
  [[0x2d, 0x48], 1, SINGLE_BYTE['138']!],
  [[0x2d, 0x4d], 1, SINGLE_BYTE['148']!],
  [[0x2d, 0x54], 1, SINGLE_BYTE['166']!],
];

const ESC = 0x1b;
const RESETS = new Set([0x5c, 0x0d, 0x0a, 0x09, 0x0c]);
const PN_RESETS = new Set([0x5e, 0x3d]);

/** True when text in these sets is plain Latin-1 or UTF-8 (the fast paths of DicomDataset). */
export function isSimpleCharset(terms: readonly string[]): boolean {
  return terms.length <= 1 && (!terms[0] || /^(ISO_IR (6|100|192)|ISO 2022 IR (6|100))$/.test(terms[0].trim()));
}

function decodeRun(bytes: Uint8Array, set: CodeElement): string {
  if (bytes.length === 0) return '';
  if (!set.sevenBitMultiByte) return iconv.decode(bytes, set.encoding);
  // A 94² set in G0: two 7-bit bytes per character; EUC holds the same characters with the high bit set.
  const euc: number[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    if (set.eucPrefix) euc.push(set.eucPrefix);
    euc.push(bytes[i]! | 0x80, bytes[i + 1]! | 0x80);
  }
  return iconv.decode(Uint8Array.from(euc), set.encoding) + (bytes.length % 2 ? '\ufffd' : '');
}

/**
 * Decodes a string element's bytes in the given SpecificCharacterSet values
 * (all of them; [] or [''] is the default repertoire). `personName` resets the
 * sets at '^' and '=' as well.
 */
export function decodeDicomText(bytes: Uint8Array, terms: readonly string[], personName = false): string {
  const first = terms[0]?.trim() ?? '';
  const whole = WHOLE[first];
  if (whole) return iconv.decode(bytes, whole);
  const initial = designation(first);
  let g0 = initial.g0;
  let g1 = initial.g1;
  let out = '';
  let start = 0;
  let i = 0;
  /** Decodes bytes[start, end): G0 runs and G1 runs each with their own set. */
  const flush = (end: number) => {
    let s = start;
    while (s < end) {
      const high = bytes[s]! >= 0x80 && !g0.sevenBitMultiByte;
      let e = s;
      while (e < end && (bytes[e]! >= 0x80 && !g0.sevenBitMultiByte) === high) e++;
      out += decodeRun(bytes.subarray(s, e), high ? g1 : g0);
      s = e;
    }
  };
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === ESC) {
      flush(i);
      const hit = ESCAPES.find(([seq]) => seq.every((x, k) => bytes[i + 1 + k] === x));
      if (hit) {
        if (hit[1] === 0) g0 = hit[2];
        else g1 = hit[2];
        i += 1 + hit[0].length;
      } else {
        out += '\ufffd'; // an escape sequence of no set this reader knows
        i++;
      }
      start = i;
      continue;
    }
    // Delimiters are single bytes only while G0 holds a one-byte set (inside a 94² set they are half a character).
    if (!g0.sevenBitMultiByte && (RESETS.has(b) || (personName && PN_RESETS.has(b)))) {
      flush(i);
      out += String.fromCharCode(b);
      g0 = initial.g0;
      g1 = initial.g1;
      start = ++i;
      continue;
    }
    i++;
  }
  flush(bytes.length);
  return out;
}

/** VRs whose text is in the Specific Character Set (the others are ASCII). */
export const TEXT_VRS = new Set(['PN', 'SH', 'LO', 'ST', 'LT', 'UT', 'UC']);
const SPECIFIC_CHARACTER_SET = 0x00080005;
const utf8 = new TextEncoder();

/**
 * Re-encodes the text of a dataset (and of its items) in UTF-8 and makes its
 * Specific Character Set ISO_IR 192, where the text is in a set other than
 * ASCII, Latin-1 and UTF-8: what rewrites text values (de-identification)
 * writes UTF-8 or Latin-1 only. Returns the sets it converted from.
 */
export function transcodeToUtf8(ds: DicomDataset): string[] {
  const from: string[] = [];
  if (!ds.utf8 && !isSimpleCharset(ds.charset)) {
    from.push(ds.charset.join('\\'));
    for (const e of ds.elements.values()) {
      if (e.items || !TEXT_VRS.has(e.vr) || e.bytes.length === 0) continue;
      const b = utf8.encode(decodeDicomText(e.bytes, ds.charset, e.vr === 'PN'));
      e.bytes = b.length % 2 ? Uint8Array.from([...b, 0x20]) : b;
      e.littleEndian = true;
    }
    const own = ds.get(SPECIFIC_CHARACTER_SET);
    if (own) ds.set({ ...own, vr: 'CS', bytes: new TextEncoder().encode('ISO_IR 192') });
    ds.charset = ['ISO_IR 192'];
    ds.utf8 = true;
  }
  for (const e of ds.elements.values()) for (const item of e.items ?? []) from.push(...transcodeToUtf8(item));
  return [...new Set(from)];
}
