/**
 * Seeded mutation fuzzing of the series and SEG readers on the real files:
 * every case must return a structurally valid result or throw MedsegIoError.
 * Any other exception fails; a hang fails through the test timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { seededRandom } from '../../util/random.ts';
import { MedsegIoError } from '../errors.ts';
import type { Volume } from '../volume.ts';
import { parseDicomSeg, segLabelmap } from './seg-read.ts';
import { readDicomSeries, readDicomSeriesFromBuffers } from './series.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const LIMITS = { maxBytes: 32 * 2 ** 20, maxDecompressedBytes: 64 * 2 ** 20 };

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const int = (n: number) => Math.floor(r() * n);
  // Most mutations hit the header (first 4 KiB) where the structure is; some anywhere.
  const pos = () => (r() < 0.8 ? int(Math.min(src.length, 4096)) : int(src.length));
  const kind = int(5);
  let b = Uint8Array.from(src);
  if (kind === 0) {
    for (let k = 1 + int(8); k > 0; k--) {
      const p = pos();
      b[p]! ^= 1 << int(8);
    }
  } else if (kind === 1) {
    b = b.subarray(0, int(b.length));
  } else if (kind === 2) {
    const p = pos();
    for (let k = 0; k < 1 + int(32) && p + k < b.length; k++) b[p + k] = int(256);
  } else if (kind === 3) {
    // Overwrite a plausible length field with an extreme value.
    const p = pos() & ~1;
    const v = [0xffffffff, 0xfffffffe, 0x7fffffff, 0x10000, 0, 1, 3, int(2 ** 32)][int(8)]!;
    const dv = new DataView(b.buffer);
    if (p + 4 <= b.length) {
      if (r() < 0.5) dv.setUint32(p, v, true);
      else dv.setUint16(p, v & 0xffff, true);
    }
  } else {
    // Copy a chunk of the file elsewhere (duplicated tags, nested garbage).
    const from = pos();
    const to = pos();
    const n = int(64);
    b.copyWithin(to, from, from + n);
  }
  return b;
}

function checkVolume(v: Volume): void {
  const n = v.size[0] * v.size[1] * v.size[2] * v.channels;
  assert.equal(v.data.length, n);
  assert.ok(v.size.every((s) => Number.isInteger(s) && s >= 1));
  assert.equal(v.direction.length, 9);
}

async function runCase(fn: () => void | Promise<void>, label: string): Promise<'ok' | string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (e instanceof MedsegIoError) return e.code;
    assert.fail(`${label}: ${(e as Error)?.stack ?? String(e)}`);
  }
}

describe('DICOM fuzz', { timeout: 180_000 }, async () => {
  const ct = await readDicomSeries(D('ct-3slice'));
  const img23 = await readDicomSeries(D('23x38x3/image'));
  const img24 = await readDicomSeries(D('24x38x3/image'));

  it('series reader survives mutated files', async () => {
    const sources = [
      ['ct-3slice/01.dcm', 300],
      ['23x38x3/image/IMG0001.dcm', 1200],
      ['24x38x3/multiframe/mf.dcm', 1400],
      ['23x38x3/multiframe/mf.dcm', 600],
    ] as const;
    const codes: Record<string, number> = {};
    let seed = 1;
    for (const [f, count] of sources) {
      const src = readFileSync(D(f));
      for (let i = 0; i < count; i++, seed++) {
        const r = seededRandom(seed);
        const bytes = mutate(src, r);
        const c = await runCase(
          async () => checkVolume(await readDicomSeriesFromBuffers([{ name: `${f}#${seed}`, bytes }], { limits: LIMITS, allowGaps: true })),
          `${f} seed ${seed}`,
        );
        codes[c] = (codes[c] ?? 0) + 1;
      }
    }
    console.log(JSON.stringify(codes));
    assert.ok((codes.ok ?? 0) > 0 && Object.keys(codes).length > 2, JSON.stringify(codes));
  });

  it('SEG reader survives mutated files', async () => {
    const sources = [
      ['liver.dcm', ct, 400],
      ['partial_overlaps.dcm', ct, 400],
      ['23x38x3/seg/label.seg', img23, 1200],
      ['24x38x3/seg/label.seg', img24, 800],
      ['sparse-labelmap-ppv5.dcm', img24, 800],
    ] as const;
    const codes: Record<string, number> = {};
    let seed = 100_000;
    for (const [f, grid, count] of sources) {
      const src = readFileSync(D(f));
      for (let i = 0; i < count; i++, seed++) {
        const bytes = mutate(src, seededRandom(seed));
        const c = await runCase(() => {
          const seg = parseDicomSeg(bytes, { source: grid, limits: LIMITS, path: `${f}#${seed}` });
          for (const m of seg.masks!.values()) checkVolume(m);
          checkVolume(segLabelmap(seg, grid, { onOverlap: 'last' }).labelmap);
        }, `${f} seed ${seed}`);
        codes[c] = (codes[c] ?? 0) + 1;
      }
    }
    console.log(JSON.stringify(codes));
    assert.ok((codes.ok ?? 0) > 0 && Object.keys(codes).length > 2, JSON.stringify(codes));
  });
});
