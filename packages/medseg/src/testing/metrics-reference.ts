/** Test and benchmark helpers for the metrics: raw-array exchange and the SciPy reference runner (eval/metrics_ref.py). */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPythonJson } from './python.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const REF_SCRIPT = join(here, '../eval/metrics_ref.py');

export function writeRaw(path: string, a: ArrayBufferView): string {
  writeFileSync(path, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return path;
}

export function dtypeOf(a: ArrayBufferView): string {
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  throw new Error('unsupported dtype for the reference');
}

/** One /usr/bin/python3 process for a whole batch of reference computations. */
export function scipyReference<T>(mode: 'cases' | 'bench', job: unknown): T {
  return runPythonJson<T>([REF_SCRIPT, mode], job);
}

/** Reference JSON encodes undefined as null and infinite as 'inf'. */
export function refNumber(v: unknown): number {
  if (v === null || v === undefined) return NaN;
  if (v === 'inf') return Infinity;
  return v as number;
}
