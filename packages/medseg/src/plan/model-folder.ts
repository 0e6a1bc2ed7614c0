/**
 * The trained model folder: the one module that knows its file names and
 * reads or writes its parts. Training writes it, prediction reads it.
 *
 *   plan.json  fingerprint.json  splits.json  postprocessing.json
 *   model-card.md  model-card.json  validation.csv  preprocessed/
 *   fold_<k>/ model_best.safetensors  model_final.safetensors
 *             checkpoint_latest.safetensors  log.jsonl
 *
 * Weights are read through readWeights, so a damaged or incomplete file is a
 * MedsegIoError (TRUNCATED or CORRUPT, naming the file) rather than an
 * unexplained crash.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';

/** Files at the top of a model folder. */
export const MODEL_FILES = {
  plan: 'plan.json',
  fingerprint: 'fingerprint.json',
  splits: 'splits.json',
  postprocessing: 'postprocessing.json',
  modelCardMarkdown: 'model-card.md',
  modelCardJson: 'model-card.json',
  validation: 'validation.csv',
  /** The preprocessing cache of the training data. */
  preprocessed: 'preprocessed',
} as const;

/** Files inside a fold_<k>/ folder. */
export const FOLD_FILES = {
  best: 'model_best.safetensors',
  final: 'model_final.safetensors',
  checkpoint: 'checkpoint_latest.safetensors',
  log: 'log.jsonl',
} as const;

export type ModelFile = keyof typeof MODEL_FILES;
export type FoldFile = keyof typeof FOLD_FILES;
/** Which weights of a fold to use: those of the best validation epoch, or of the last epoch. */
export type CheckpointChoice = 'best' | 'final';

export function modelFile(modelDir: string, file: ModelFile): string {
  return join(modelDir, MODEL_FILES[file]);
}

export function foldDir(modelDir: string, fold: number): string {
  return join(modelDir, `fold_${fold}`);
}

export function foldFile(foldPath: string, file: FoldFile): string {
  return join(foldPath, FOLD_FILES[file]);
}

/** The fold_<k> folders of a model folder, by fold number. */
export function listFolds(modelDir: string): { fold: number; dir: string }[] {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'model folder does not exist', modelDir);
  return readdirSync(modelDir)
    .filter((f) => /^fold_\d+$/.test(f) && statSync(join(modelDir, f)).isDirectory())
    .map((f) => ({ fold: Number(f.slice(5)), dir: join(modelDir, f) }))
    .sort((a, b) => a.fold - b.fold);
}

/**
 * The weights file of a fold. An explicit choice must exist (else NOT_FOUND);
 * without one, the best weights, else the final ones. Null when the fold has
 * no weights at all (a fold not trained yet).
 */
export function weightsFile(foldPath: string, choice?: CheckpointChoice): string | null {
  const best = foldFile(foldPath, 'best');
  const final = foldFile(foldPath, 'final');
  if (!existsSync(best) && !existsSync(final)) return null;
  if (choice) {
    const wanted = choice === 'best' ? best : final;
    if (!existsSync(wanted)) throw new MedsegIoError('NOT_FOUND', `this fold has no ${choice} weights (${FOLD_FILES[choice]}); use --checkpoint ${choice === 'best' ? 'final' : 'best'}`, wanted);
    return wanted;
  }
  return existsSync(best) ? best : final;
}

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
  try {
    return torch.parseSafetensors(bytes, path);
  } catch (e) {
    if (!(e instanceof torch.SafetensorsError)) throw e;
    const reason = e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message;
    if (isTruncated(bytes)) throw new MedsegIoError('TRUNCATED', `weights file is incomplete (${reason})`, path);
    throw new MedsegIoError('CORRUPT', `not a valid safetensors weights file (${reason})`, path);
  }
}

/**
 * Loads weights into a network. A file whose tensors do not fit the network
 * the plan describes (other names or shapes) is BAD_DATA.
 */
export function loadWeightsInto(net: { loadStateDict(state: Map<string, Tensor>): unknown }, path: string): void {
  const { tensors } = readWeights(path);
  try {
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

/** The postprocessing cross-validation chose: classes whose largest connected component alone is kept. */
export interface PostprocessingChoice {
  keepLargestComponent: number[];
  /** Per class, the per-case validation Dice without and with it. */
  evidence?: Record<string, { without: number[]; with: number[] }>;
}

/** postprocessing.json of a model folder; none when the folder has no such file. */
export function readPostprocessing(modelDir: string): PostprocessingChoice {
  const path = modelFile(modelDir, 'postprocessing');
  if (!existsSync(path)) return { keepLargestComponent: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `cannot read the postprocessing choice (${(e as Error).message})`, path);
  }
  const keep = (raw as Partial<PostprocessingChoice> | null)?.keepLargestComponent;
  if (!Array.isArray(keep) || !keep.every((k) => Number.isInteger(k) && k > 0)) {
    throw new MedsegIoError('BAD_DATA', 'keepLargestComponent must be a list of class numbers (> 0)', path);
  }
  return raw as PostprocessingChoice;
}

export function writePostprocessing(modelDir: string, choice: PostprocessingChoice): void {
  writeJsonAtomicSync(modelFile(modelDir, 'postprocessing'), choice);
}
