/**
 * The Secondary Capture writer's pieces that the explain CLI test (which
 * runs dciodvfy and pydicom on a written series) does not pin down: the
 * patient-orientation letters, and typed errors for a source without slice
 * UIDs or slices that do not match it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MedsegIoError } from '../errors.ts';
import type { Volume } from '../volume.ts';
import { buildSecondaryCaptureSeries, orientationLetters } from './secondary-capture-write.ts';
import { parseDicom } from './parse.ts';
import { T } from './dictionary.ts';

test('orientation letters follow PS3.3: the axes over 0.25, largest first, L/P/H positive', () => {
  assert.equal(orientationLetters([1, 0, 0]), 'L');
  assert.equal(orientationLetters([-1, 0, 0]), 'R');
  assert.equal(orientationLetters([0, -1, 0]), 'A');
  assert.equal(orientationLetters([0, 0, -1]), 'F');
  assert.equal(orientationLetters([0.6, -0.8, 0]), 'AL');
  assert.equal(orientationLetters([0.2, 0.7, -0.68]), 'PF');
});

function source(nz: number, withUids: boolean): Volume {
  return {
    size: [3, 2, nz],
    spacing: [1, 1, 2],
    origin: [0, 0, 0],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    channels: 1,
    data: new Float32Array(6 * nz),
    meta: { modality: 'MR', studyInstanceUID: '2.25.1', ...(withUids ? { sopInstanceUIDs: Array.from({ length: nz }, (_, z) => `2.25.1.${z}`) } : {}) },
  } as Volume;
}

const rgb = (n: number) => ({ width: 3, height: 2, rgb: new Uint8Array(18).fill(n) });

test('one instance per slice in the source study, odd pixel data padded; mismatches are typed errors', () => {
  const files = buildSecondaryCaptureSeries([rgb(1), rgb(2)], source(2, true));
  assert.equal(files.length, 2);
  const p = parseDicom(files[1]!);
  assert.equal(p.dataset.string(T.StudyInstanceUID), '2.25.1');
  assert.equal(p.dataset.string(T.Modality), 'MR');
  assert.equal(p.dataset.number(T.InstanceNumber), 2);
  assert.equal(p.dataset.get(T.PixelData)!.bytes.length, 18);
  const odd = buildSecondaryCaptureSeries([{ width: 3, height: 1, rgb: new Uint8Array(9) }], { ...source(1, true), size: [3, 1, 1] });
  assert.equal(parseDicom(odd[0]!).dataset.get(T.PixelData)!.bytes.length, 10, 'padded to even length');
  assert.throws(
    () => buildSecondaryCaptureSeries([rgb(1)], source(2, true)),
    (e) => e instanceof MedsegIoError && /1 rendered slices for a source of 2/.test(e.message),
  );
  assert.throws(
    () => buildSecondaryCaptureSeries([rgb(1)], source(1, false)),
    (e) => e instanceof MedsegIoError && /SOP instance UIDs/.test(e.message),
  );
  assert.throws(
    () => buildSecondaryCaptureSeries([{ width: 3, height: 2, rgb: new Uint8Array(5) }], source(1, true)),
    (e) => e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY',
  );
});
