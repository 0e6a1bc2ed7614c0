/**
 * Allocation guards shared by the readers: every size a header asks for is
 * checked against ReadLimits before anything is allocated, and gzip is
 * inflated with a hard output bound (gzip-bomb protection).
 */
import { constants as bufferConstants } from 'node:buffer';
import { gunzipSync } from 'node:zlib';
import { DEFAULT_LIMITS, MedsegIoError, type ReadLimits } from './errors.ts';

export interface ReadOptions {
  limits?: Partial<ReadLimits>;
}

export function resolveLimits(l?: Partial<ReadLimits>): ReadLimits {
  return { ...DEFAULT_LIMITS, ...(l ?? {}) };
}

/** Throws TOO_LARGE unless count * bytesPer is a safe integer within maxBytes. */
export function checkAllocation(count: number, bytesPer: number, limits: ReadLimits, path?: string): number {
  const bytes = count * bytesPer;
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(bytes) || bytes > limits.maxBytes) {
    throw new MedsegIoError(
      'TOO_LARGE',
      `header asks for ${count} voxels x ${bytesPer} bytes, over the ${limits.maxBytes}-byte limit (raise limits.maxBytes if the file is genuine)`,
      path,
    );
  }
  return bytes;
}

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/**
 * Inflate a whole gzip stream, never producing more than `maxOut` bytes
 * (clamped to limits.maxDecompressedBytes and to what a Buffer can hold).
 */
export function gunzipBounded(buf: Uint8Array, maxOut: number, limits: ReadLimits, path?: string): Buffer {
  const bound = Math.max(0, Math.min(maxOut, limits.maxDecompressedBytes, bufferConstants.MAX_LENGTH));
  try {
    return gunzipSync(buf, { maxOutputLength: bound });
  } catch (e) {
    throw zlibError(e, bound, path);
  }
}

/**
 * Inflate only the beginning of a gzip stream (to read a header before the
 * total size is known). Output is bounded by the input prefix: deflate cannot
 * expand more than ~1032x, so a 4 KiB prefix yields at most ~4 MiB.
 */
export function gunzipPrefix(buf: Uint8Array, prefixBytes: number, path?: string): Buffer {
  const head = buf.subarray(0, Math.min(buf.length, prefixBytes));
  try {
    return gunzipSync(head, { finishFlush: 2 /* Z_SYNC_FLUSH: accept a cut stream */, maxOutputLength: 8 * 1024 * 1024 });
  } catch (e) {
    throw zlibError(e, 8 * 1024 * 1024, path);
  }
}

function zlibError(e: unknown, bound: number, path?: string): MedsegIoError {
  const err = e as { code?: string; message?: string };
  if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
    return new MedsegIoError('TOO_LARGE', `gzip data inflates past ${bound} bytes (corrupt or a gzip bomb)`, path);
  }
  if (err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message ?? '')) {
    return new MedsegIoError('TRUNCATED', 'gzip stream ends early (file truncated)', path);
  }
  return new MedsegIoError('CORRUPT', `gzip data is corrupt: ${err.message ?? String(e)}`, path);
}

/** Map a file-system error to a MedsegIoError (ENOENT -> NOT_FOUND). */
export function fsError(e: unknown, path: string): MedsegIoError {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return new MedsegIoError('NOT_FOUND', 'no such file', path);
  if (code === 'EISDIR') return new MedsegIoError('UNSUPPORTED', 'is a directory', path);
  if (code === 'ERR_FS_FILE_TOO_LARGE' || e instanceof RangeError) return new MedsegIoError('TOO_LARGE', 'file too large to read', path);
  return new MedsegIoError('CORRUPT', `cannot read: ${(e as Error).message}`, path);
}
