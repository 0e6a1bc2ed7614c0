/**
 * safetensors (the Hugging Face format): an 8-byte little-endian header length,
 * a JSON header {name: {dtype, shape, data_offsets}, __metadata__}, then the raw
 * little-endian bytes. Hand-written because the format is small and the npm
 * packages for it are tied to other tensor libraries. Loading validates the
 * header against the file (hostile files get errors, not allocations), and
 * saving writes a temp file and renames it, so a crash never leaves a torn file.
 */
import { openSync, closeSync, fsyncSync, readFileSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { native } from './native.ts';
import { DTYPE_CODE, elementSize, type DType } from './dtype.ts';
import { Tensor } from './tensor.ts';

const TO_ST: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_ST = new Map<string, DType>(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));

export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
}

const MAX_HEADER = 100 * 1024 * 1024;

export function serializeSafetensors(tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const entries = [...(tensors instanceof Map ? tensors : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const buffers: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = new Uint8Array(native.toBuffer(t.handle));
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    buffers.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json, 'utf8'), ...buffers]);
}

export interface SafetensorsContent {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

export function parseSafetensors(buf: Uint8Array, source = 'safetensors data'): SafetensorsContent {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (buf.byteLength < 8) fail('truncated: shorter than the 8-byte header length');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > buf.byteLength) fail(`header length ${n} exceeds the file (${buf.byteLength} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, n).toString('utf8'));
  } catch {
    return fail('header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = buf.byteLength - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const tensors = new Map<string, Tensor>();
  const ranges: [number, number][] = [];
  try {
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, data_offsets } = (info ?? {}) as { dtype?: string; shape?: unknown; data_offsets?: unknown };
      const dt = FROM_ST.get(String(dtype));
      if (!dt) fail(`tensor '${name}' has unsupported dtype ${dtype}`);
      if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) fail(`tensor '${name}' has an invalid shape`);
      if (!Array.isArray(data_offsets) || data_offsets.length !== 2) fail(`tensor '${name}' has invalid data_offsets`);
      const [b, e] = data_offsets as [number, number];
      const numel = (shape as number[]).reduce((a, s) => a * s, 1);
      if (!(Number.isInteger(b) && Number.isInteger(e) && 0 <= b && b <= e && e <= dataLen))
        fail(`tensor '${name}' data [${b}, ${e}) lies outside the data (${dataLen} bytes)`);
      if (e - b !== numel * elementSize(dt!)) fail(`tensor '${name}' has ${e - b} bytes but shape [${shape}] ${dt} needs ${numel * elementSize(dt!)}`);
      ranges.push([b, e]);
      // Copy into an aligned buffer: the source offset may not be aligned for the element type.
      const bytes = buf.slice(dataStart + b, dataStart + e);
      tensors.set(name, new Tensor(native.fromBuffer(bytes, shape as number[], DTYPE_CODE[dt!])));
    }
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) if (ranges[i]![0] < ranges[i - 1]![1]) fail('tensor data ranges overlap');
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    if (err instanceof SafetensorsError) throw err;
    // libtorch's own refusals (e.g. a zero-element shape whose size overflows) are bad files too.
    throw new SafetensorsError(`${source}: ${(err as Error).message}`);
  }
  return { tensors, metadata };
}

/** Writes atomically: a temp file beside the target, fsync, rename. */
export function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

export function loadSafetensors(path: string): SafetensorsContent {
  return parseSafetensors(readFileSync(path), path);
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
