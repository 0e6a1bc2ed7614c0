/**
 * Decoding of raw sample bytes shared by the NIfTI and NRRD readers: copy into
 * an aligned buffer, swap to host (little-endian) order, narrow 64-bit
 * integers (which a Volume cannot hold) to int32 when every value fits, else
 * float64 (exact up to 2^53).
 */
import type { VoxelArray, VoxelType } from './volume.ts';

export type SampleKind = VoxelType | 'int64' | 'uint64';

export const SAMPLE_BYTES: Record<SampleKind, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  float64: 8,
  int64: 8,
  uint64: 8,
};

/** Bytes per voxel of the decoded array (64-bit ints may widen to float64). */
export function decodedBytes(kind: SampleKind): number {
  return kind === 'int64' || kind === 'uint64' ? 8 : SAMPLE_BYTES[kind];
}

export function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i + width <= b.length; i += width) {
    for (let a = i, z = i + width - 1; a < z; a++, z--) {
      const t = b[a]!;
      b[a] = b[z]!;
      b[z] = t;
    }
  }
}

/** `raw` must hold at least count * SAMPLE_BYTES[kind] bytes. */
export function decodeSamples(raw: Uint8Array, kind: SampleKind, count: number, littleEndian: boolean): VoxelArray {
  const width = SAMPLE_BYTES[kind];
  const copy = new Uint8Array(count * width);
  copy.set(raw.subarray(0, count * width));
  if (!littleEndian && width > 1) swapBytes(copy, width);
  const ab = copy.buffer;
  switch (kind) {
    case 'uint8':
      return copy;
    case 'int8':
      return new Int8Array(ab);
    case 'int16':
      return new Int16Array(ab);
    case 'uint16':
      return new Uint16Array(ab);
    case 'int32':
      return new Int32Array(ab);
    case 'uint32':
      return new Uint32Array(ab);
    case 'float32':
      return new Float32Array(ab);
    case 'float64':
      return new Float64Array(ab);
    case 'int64':
    case 'uint64': {
      const big = kind === 'int64' ? new BigInt64Array(ab) : new BigUint64Array(ab);
      let fits = true;
      for (let i = 0; i < big.length; i++) {
        const v = big[i]!;
        if (v > 2147483647n || v < -2147483648n) {
          fits = false;
          break;
        }
      }
      const out = fits ? new Int32Array(big.length) : new Float64Array(big.length);
      for (let i = 0; i < big.length; i++) out[i] = Number(big[i]!);
      return out;
    }
  }
}
