/**
 * Seeded mutation fuzzing of the series and SEG readers on the real files:
 * every case must return a structurally valid result or throw MedsegIoError.
 * Any other exception fails; a hang fails through the test timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { fuzzOutcome, mutateDicomBytes as mutate } from '../../testing/dicom-mutate.ts';
import { seededRandom } from '../../util/random.ts';
import type { Volume } from '../volume.ts';
import { parseDicomSeg, segLabelmap } from './seg-read.ts';
import { readDicomSeries, readDicomSeriesFromBuffers } from './series.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const LIMITS = { maxBytes: 32 * 2 ** 20, maxDecompressedBytes: 64 * 2 ** 20 };

function checkVolume(v: Volume): void {
  const n = v.size[0] * v.size[1] * v.size[2] * v.channels;
  assert.equal(v.data.length, n);
  assert.ok(v.size.every((s) => Number.isInteger(s) && s >= 1));
  assert.equal(v.direction.length, 9);
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
        const c = await fuzzOutcome(
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
        const c = await fuzzOutcome(() => {
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
