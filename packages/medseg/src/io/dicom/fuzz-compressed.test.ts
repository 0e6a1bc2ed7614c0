/**
 * Seeded mutation fuzzing of the compressed-pixel-data decoders (JPEG baseline
 * / extended, JPEG lossless, JPEG-LS, JPEG 2000, HTJ2K) through the series
 * reader: the codestream of a real tool-made file is mutated (bit flips, cuts,
 * random runs, extreme values in the marker segments, copied chunks, junk
 * appended), or the DICOM header is made to disagree with it. Every case must
 * give a valid volume or a MedsegIoError; anything else fails with its seed, a
 * hang fails through the timeout. MEDSEG_FUZZ_CASES sets the number of cases
 * (default 400; the long run is MEDSEG_FUZZ_CASES=12000).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { compressSeries, skipUnless, writeSeries, type Compression } from '../../testing/dicom-compressed.ts';
import { seededRandom } from '../../util/random.ts';
import { MedsegIoError } from '../errors.ts';
import { readNifti } from '../nifti.ts';
import { T } from './dictionary.ts';
import { parseDicom, type ParsedDicom } from './parse.ts';
import { readDicomSeriesFromBuffers } from './series.ts';
import { el, writeDicom } from './write.ts';

const CASES = Number(process.env.MEDSEG_FUZZ_CASES ?? 400);
const LIMITS = { maxBytes: 32 * 2 ** 20, maxDecompressedBytes: 64 * 2 ** 20 };
const tmp = mkdtempSync(join(tmpdir(), 'medseg-fuzz-compressed-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const KINDS: [Compression, 'mr12' | 'mr8'][] = [
  ['jpeg-lossless', 'mr12'],
  ['jpeg-lossless-sv1', 'mr12'],
  ['jpegls', 'mr12'],
  ['jpegls-near', 'mr12'],
  ['j2k', 'mr12'],
  ['j2k-lossy', 'mr12'],
  ['htj2k', 'mr12'],
  ['htj2k-lossy', 'mr12'],
  ['jpeg-baseline', 'mr8'],
  ['jpeg-extended', 'mr8'],
  ['jpeg-extended', 'mr12'],
];

function mutateFrame(src: Uint8Array, r: () => number): Uint8Array {
  const int = (n: number) => Math.floor(r() * n);
  // Most mutations hit the marker segments at the start, where the structure is.
  const pos = (n: number) => (r() < 0.6 ? int(Math.min(n, 256)) : int(n));
  let b = Uint8Array.from(src);
  switch (int(6)) {
    case 0:
      for (let k = 1 + int(8); k > 0; k--) {
        const p = pos(b.length);
        b[p]! ^= 1 << int(8);
      }
      break;
    case 1:
      b = b.subarray(0, int(b.length));
      break;
    case 2: {
      const p = pos(b.length);
      for (let k = 0; k < 1 + int(32) && p + k < b.length; k++) b[p + k] = int(256);
      break;
    }
    case 3: {
      const p = pos(b.length);
      const v = [0xffff, 0xfffe, 0x8000, 0, 1, 2, 0xff00, int(65536)][int(8)]!;
      if (p + 2 <= b.length) {
        b[p] = v >>> 8;
        b[p + 1] = v & 0xff;
      }
      if (r() < 0.3 && p + 4 <= b.length) b[p + 2] = b[p + 3] = 0xff;
      break;
    }
    case 4: {
      const from = pos(b.length);
      b.copyWithin(pos(b.length), from, from + int(64));
      break;
    }
    default: {
      const junk = Uint8Array.from({ length: int(512) }, () => int(256));
      b = Buffer.concat([r() < 0.5 ? b : b.subarray(0, int(b.length)), junk]);
    }
  }
  return b;
}

/** A DICOM header that disagrees with its codestream. */
function mutateHeader(f: ParsedDicom, r: () => number): void {
  const int = (n: number) => Math.floor(r() * n);
  const us = (tag: number, v: number) => f.dataset.set(el.nums(tag, 'US', [v]));
  switch (int(5)) {
    case 0:
      us(T.Rows, [1, 2, 51, 53, 4096, 65535][int(6)]!);
      break;
    case 1:
      us(T.Columns, [1, 33, 35, 65535][int(4)]!);
      break;
    case 2:
      us(T.BitsAllocated, [1, 8, 16, 32][int(4)]!);
      break;
    case 3:
      us(T.SamplesPerPixel, [1, 3][int(2)]!);
      f.dataset.set(el.str(T.PhotometricInterpretation, 'CS', ['RGB', 'YBR_FULL_422', 'YBR_RCT', 'MONOCHROME1'][int(4)]!));
      break;
    default:
      us(T.PixelRepresentation, int(2));
      us(T.BitsStored, [1, 7, 8, 12, 16][int(5)]!);
  }
}

describe('compressed pixel data fuzz', { timeout: Math.max(300_000, CASES * 200) }, () => {
  const tools = [
    ...new Set(
      KINDS.map(([c]) => (c.startsWith('htj2k') ? 'ojph_compress' : c.startsWith('j2k') ? 'gdcmconv' : c.startsWith('jpegls') ? 'dcmcjpls' : 'dcmcjpeg')),
    ),
  ];
  it(`${CASES} mutated files: a volume or a MedsegIoError, never a crash or a hang`, { skip: skipUnless(tools) }, async () => {
    // One slice each of an MR 12-bit and an 8-bit series, compressed by the Debian tools.
    const v12 = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_003.nii.gz'));
    const v8 = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz'));
    writeSeries(v12, join(tmp, 'mr12'), { bitsAllocated: 16, bitsStored: 12, seriesUID: '2.25.3001', zRange: [15, 16] });
    writeSeries(v8, join(tmp, 'mr8'), { bitsAllocated: 8, bitsStored: 8, seriesUID: '2.25.3002', zRange: [15, 16] });
    const sources = KINDS.map(([c, src]) => {
      const dir = join(tmp, `${c}-${src}`);
      compressSeries(c, join(tmp, src), dir);
      const name = readdirSync(dir)[0]!;
      const bytes = readFileSync(join(dir, name));
      const frame = Buffer.concat(parseDicom(bytes).dataset.get(T.PixelData)!.fragments!);
      return { c, bytes, frame };
    });
    const codes: Record<string, number> = {};
    const perKind: Record<string, Record<string, number>> = {};
    let slowest = 0;
    const slow: string[] = [];
    for (let seed = 1; seed <= CASES; seed++) {
      const s = sources[seed % sources.length]!;
      const r = seededRandom(seed);
      const f = parseDicom(s.bytes);
      const px = f.dataset.get(T.PixelData)!;
      if (r() < 0.15) mutateHeader(f, r);
      else f.dataset.set({ ...px, fragments: [mutateFrame(s.frame, r)], offsetTable: new Uint8Array(0) });
      const bytes = writeDicom(f.dataset, { transferSyntaxUID: f.transferSyntaxUID });
      const t0 = performance.now();
      let code: string;
      try {
        const v = await readDicomSeriesFromBuffers([{ name: `${s.c}#${seed}`, bytes }], { limits: LIMITS });
        assert.equal(v.data.length, v.size[0] * v.size[1] * v.size[2] * v.channels);
        code = 'ok';
      } catch (e) {
        if (!(e instanceof MedsegIoError)) assert.fail(`${s.c} seed ${seed}: ${(e as Error)?.stack ?? String(e)}`);
        code = e.code;
      }
      const ms = performance.now() - t0;
      if (ms > 1000) slow.push(`${s.c} seed ${seed}: ${Math.round(ms)} ms (${code})`);
      slowest = Math.max(slowest, ms);
      codes[code] = (codes[code] ?? 0) + 1;
      (perKind[s.c] ??= {})[code] = (perKind[s.c]![code] ?? 0) + 1;
    }
    console.log(JSON.stringify({ cases: CASES, codes, slowestMs: Math.round(slowest), slow, perKind }));
    assert.ok((codes.ok ?? 0) > 0 && (codes.CORRUPT ?? 0) > 0, JSON.stringify(codes));
  });
});
