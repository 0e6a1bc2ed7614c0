/**
 * An exported medseg model in a web page, on onnxruntime-web: load the .onnx
 * bytes, read the plan's preprocessing and labels from the model's 'medseg'
 * metadata entry, run one patch and take the argmax. Browser code: it uses no
 * Node module, and the page hands in the onnxruntime-web namespace it loaded
 * (so the page decides where the runtime and its .wasm files come from).
 */
import type * as OrtWeb from 'onnxruntime-web';
import type { OnnxModelInfo } from '../model-info.ts';

/** The model is not a medseg export, or its bytes are not an ONNX model. */
export class WebModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebModelError';
  }
}

/** Reads a protobuf varint at pos; lengths and tags in an ONNX file stay far below 2^53. */
function varint(b: Uint8Array, pos: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = pos; i < b.length && i < pos + 10; i++) {
    const byte = b[i]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) return [value, i + 1];
  }
  throw new WebModelError(`not an ONNX model: a truncated varint at byte ${pos}`);
}

/** Fields of one protobuf message: field number -> the byte ranges of its length-delimited values. */
function lengthDelimited(b: Uint8Array, wanted: Set<number>): Map<number, Uint8Array[]> {
  const found = new Map<number, Uint8Array[]>();
  let pos = 0;
  while (pos < b.length) {
    const [tag, afterTag] = varint(b, pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) pos = varint(b, afterTag)[1];
    else if (wire === 1) pos = afterTag + 8;
    else if (wire === 5) pos = afterTag + 4;
    else if (wire === 2) {
      const [len, start] = varint(b, afterTag);
      if (start + len > b.length) throw new WebModelError(`not an ONNX model: field ${field} runs past the end (byte ${start} + ${len} > ${b.length})`);
      if (wanted.has(field)) {
        const list = found.get(field) ?? [];
        list.push(b.subarray(start, start + len));
        found.set(field, list);
      }
      pos = start + len;
    } else throw new WebModelError(`not an ONNX model: wire type ${wire} at byte ${pos}`);
  }
  return found;
}

/** ModelProto.metadata_props (field 14), each a StringStringEntryProto {key = 1, value = 2}. */
export function readOnnxMetadata(model: Uint8Array): Record<string, string> {
  const text = new TextDecoder();
  const out: Record<string, string> = {};
  for (const entry of lengthDelimited(model, new Set([14])).get(14) ?? []) {
    const f = lengthDelimited(entry, new Set([1, 2]));
    const key = f.get(1)?.[0];
    if (key) out[text.decode(key)] = text.decode(f.get(2)?.[0] ?? new Uint8Array());
  }
  return out;
}

/** The 'medseg' entry of an exported model's metadata. */
export function readModelInfo(model: Uint8Array): OnnxModelInfo {
  const raw = readOnnxMetadata(model).medseg;
  if (raw === undefined) throw new WebModelError("the model has no 'medseg' metadata entry: export it with medseg export");
  const info = JSON.parse(raw) as OnnxModelInfo;
  if (typeof info.format !== 'string' || !info.format.startsWith('medseg.onnx/'))
    throw new WebModelError(`unknown medseg metadata format '${String(info.format)}'`);
  return info;
}

export interface WebModel {
  session: OrtWeb.InferenceSession;
  info: OnnxModelInfo;
  ort: typeof OrtWeb;
}

export interface LoadWebModelOptions {
  /** onnxruntime-web execution providers, in order of preference (default ['wasm']). */
  executionProviders?: string[];
}

/** Creates the session and reads the model's medseg metadata. */
export async function loadWebModel(ort: typeof OrtWeb, model: Uint8Array, o: LoadWebModelOptions = {}): Promise<WebModel> {
  const info = readModelInfo(model);
  const session = await ort.InferenceSession.create(model, { executionProviders: o.executionProviders ?? ['wasm'], graphOptimizationLevel: 'all' });
  return { session, info, ort };
}

/** Raw logits of one batch [N, C, ...spatial] of preprocessed image data. */
export async function runPatch(m: WebModel, data: Float32Array, shape: number[]): Promise<{ logits: Float32Array; dims: number[] }> {
  const channels = m.info.channels.length;
  if (shape.length !== m.info.patchSize.length + 2 || shape[1] !== channels) {
    throw new WebModelError(`the model takes [N, ${channels}, ${m.info.patchSize.map(() => '…').join(', ')}]; got [${shape.join(', ')}]`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new WebModelError(`${data.length} values for shape [${shape.join(', ')}] (${n} expected)`);
  const out = await m.session.run({ [m.info.input.name]: new m.ort.Tensor('float32', data, shape) });
  const logits = out[m.info.output.name];
  if (!logits) throw new WebModelError(`the model has no output '${m.info.output.name}'`);
  const result = { logits: logits.data as Float32Array, dims: [...logits.dims] };
  logits.dispose();
  return result;
}

/** Label per voxel of logits [N, C, ...spatial]: the first largest class, as torch's argmax. */
export function argmaxClasses(logits: Float32Array, dims: number[]): Uint8Array {
  const [batch = 1, classes = 1] = dims;
  const voxels = dims.slice(2).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(batch * voxels);
  for (let b = 0; b < batch; b++) {
    const base = b * classes * voxels;
    for (let v = 0; v < voxels; v++) {
      let best = 0;
      let top = logits[base + v]!;
      for (let c = 1; c < classes; c++) {
        const x = logits[base + c * voxels + v]!;
        if (x > top) {
          top = x;
          best = c;
        }
      }
      out[b * voxels + v] = best;
    }
  }
  return out;
}
