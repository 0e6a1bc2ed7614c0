/**
 * Fuzz-test support: seeded byte-level mutation of a DICOM file (bit flips,
 * truncation, random runs, extreme length fields and copied chunks, mostly in
 * the first 4 KiB where the header's structure is), and the outcome of one
 * case (ok, or the code of the MedsegIoError it threw; any other error fails).
 */
import assert from 'node:assert/strict';
import { MedsegIoError } from '../io/errors.ts';

/** 'ok', or the typed error's code; anything else fails the test with its label and stack. */
export async function fuzzOutcome(fn: () => unknown, label: string): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (e instanceof MedsegIoError) return e.code;
    assert.fail(`${label}: ${(e as Error)?.stack ?? String(e)}`);
  }
}

export function mutateDicomBytes(src: Uint8Array, r: () => number): Uint8Array {
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
