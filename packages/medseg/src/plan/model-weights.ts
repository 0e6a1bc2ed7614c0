/**
 * Reading and writing weights files (safetensors) of a model folder. A
 * damaged or incomplete file is a MedsegIoError (TRUNCATED or CORRUPT, naming
 * the file) rather than an unexplained crash.
 */
import { readFileSync } from 'node:fs';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';

/** Where a safetensors file that fails to parse was cut short rather than damaged. */
function isTruncated(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 8) return true;
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  // A plausible header length (safetensors caps it at 100 MB) that runs past the end.
  if (headerLength <= 100 * 1024 * 1024 && 8 + headerLength > bytes.byteLength) return true;
  if (8 + headerLength > bytes.byteLength) return false;
  let header: Record<string, { data_offsets?: unknown }>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8')) as typeof header;
  } catch {
    return false;
  }
  const dataLength = bytes.byteLength - 8 - headerLength;
  const end = Object.entries(header ?? {})
    .filter(([k]) => k !== '__metadata__')
    .map(([, v]) => (Array.isArray(v?.data_offsets) ? Number(v.data_offsets[1]) : 0))
    .reduce((a, b) => Math.max(a, Number.isFinite(b) ? b : 0), 0);
  return end > dataLength;
}

/** Reads a safetensors file (weights or a checkpoint); the caller disposes the tensors. */
export function readWeights(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'CORRUPT';
    throw new MedsegIoError(code, `cannot read the weights (${(e as Error).message})`, path);
  }
  return parseWeights(bytes, path);
}

/** Parses safetensors bytes (a file's or a request body's, named by `source`); the caller disposes the tensors. */
export function parseWeights(bytes: Uint8Array, source: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  try {
    return torch.parseSafetensors(bytes, source);
  } catch (e) {
    if (!(e instanceof torch.SafetensorsError)) throw e;
    const reason = e.message.startsWith(`${source}: `) ? e.message.slice(source.length + 2) : e.message;
    if (isTruncated(bytes)) throw new MedsegIoError('TRUNCATED', `weights file is incomplete (${reason})`, source);
    throw new MedsegIoError('CORRUPT', `not a valid safetensors weights file (${reason})`, source);
  }
}

/**
 * Safetensors metadata key of a structurally pruned network's weights (the
 * pruning summary, JSON): their shapes are the pruned ones, smaller than those
 * of the network the plan describes.
 */
export const PRUNING_METADATA_KEY = 'medseg.pruning';

/**
 * Re-points every parameter and buffer whose stored tensor is smaller (same
 * rank, no axis larger) at zeros of the stored shape, so the pruned weights
 * load into a network built from the plan.
 */
function shrinkTo(net: torch.nn.Module, tensors: Map<string, Tensor>): void {
  for (const [name, t] of net.stateDict()) {
    const s = tensors.get(name);
    if (!s || s.shape.join(',') === t.shape.join(',')) continue;
    if (s.ndim !== t.ndim || s.shape.some((n, i) => n > t.shape[i]!)) continue;
    const z = torch.zeros(s.shape, { dtype: t.dtype });
    t.setData_(z);
    z.dispose();
  }
}

/**
 * Loads weights into a network. A file whose tensors do not fit the network
 * the plan describes (other names or shapes) is BAD_DATA; a pruned network's
 * weights (PRUNING_METADATA_KEY) shrink the network to their shapes first.
 */
export function loadWeightsInto(net: torch.nn.Module, path: string): void {
  const { tensors, metadata } = readWeights(path);
  try {
    if (metadata[PRUNING_METADATA_KEY] !== undefined) shrinkTo(net, tensors);
    net.loadStateDict(tensors);
  } catch (e) {
    throw new MedsegIoError('BAD_DATA', `the weights do not fit the network of the plan (${(e as Error).message})`, path);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Saves a network's weights (atomically: the safetensors writer renames a finished temporary file). */
export function saveWeights(path: string, weights: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  torch.saveSafetensors(path, weights, metadata);
}
