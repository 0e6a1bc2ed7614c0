/**
 * NumPy .npz archives (numpy.savez / savez_compressed): a zip of .npy files,
 * one per array, named '<key>.npy'. The zip is read with fflate; each entry's
 * declared size is checked against the read limits before it is inflated.
 */
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { MedsegIoError } from './errors.ts';
import { resolveLimits, type ReadOptions } from './limits.ts';
import { parseNpy, type NpyArray } from './npy.ts';

export interface NpzReadOptions extends ReadOptions {
  /** Only these keys are inflated and decoded (default: all). A missing key is an error. */
  keys?: string[];
}

/** Decodes an .npz held in memory: key (file name without '.npy') -> array. */
export function parseNpz(bytes: Uint8Array, path?: string, o: NpzReadOptions = {}): Map<string, NpyArray> {
  const limits = resolveLimits(o.limits);
  if (bytes.length < 22) throw new MedsegIoError('TRUNCATED', `npz file of ${bytes.length} bytes is too short to be a zip archive`, path);
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) throw new MedsegIoError('BAD_MAGIC', 'not an .npz file (no zip signature PK)', path);
  const wanted = o.keys ? new Set(o.keys.map((k) => `${k}.npy`)) : null;
  let total = 0;
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        if (wanted && !wanted.has(f.name)) return false;
        total += f.originalSize;
        if (f.originalSize > limits.maxBytes || total > limits.maxDecompressedBytes) {
          throw new MedsegIoError('TOO_LARGE', `npz entry '${f.name}' inflates to ${f.originalSize} bytes, over the read limits`, path);
        }
        if (f.compression !== 0 && f.compression !== 8) {
          throw new MedsegIoError('UNSUPPORTED', `npz entry '${f.name}' uses zip compression method ${f.compression} (stored and deflate are supported)`, path);
        }
        return true;
      },
    });
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    const code = /unexpected EOF|invalid zip|end of/i.test(msg) ? 'TRUNCATED' : 'CORRUPT';
    throw new MedsegIoError(code, `npz archive cannot be read: ${msg}`, path);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, data] of Object.entries(entries)) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(data, path ? `${path}:${name}` : name, o));
  }
  for (const k of o.keys ?? []) {
    if (!out.has(k)) throw new MedsegIoError('BAD_DATA', `npz has no array '${k}' (it holds: ${[...out.keys()].join(', ') || 'none'})`, path);
  }
  return out;
}

/** Reads an .npz file (see parseNpz). */
export function readNpz(path: string, o: NpzReadOptions = {}): Map<string, NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new MedsegIoError(err.code === 'ENOENT' ? 'NOT_FOUND' : 'CORRUPT', `cannot read: ${err.message}`, path);
  }
  return parseNpz(bytes, path, o);
}
