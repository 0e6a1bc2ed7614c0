/**
 * The weights a federation exchanges: the float32 tensors of a network's
 * state (parameters and buffers) by name, as flat Float32Arrays, and their
 * safetensors encoding on the wire and on disk. Decoding checks a body
 * against the shapes the receiver expects, so a truncated, corrupt,
 * misshaped or non-finite update is a typed error before anything uses it.
 */
import * as torch from '@medseg/torch';
import type { nn } from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import { parseWeights } from '../plan/model-weights.ts';
import { FederationError } from './errors.ts';

/** Tensor name -> shape. */
export type WeightShapes = Map<string, number[]>;
/** Tensor name -> values. */
export type WeightValues = Map<string, Float32Array>;

/** Shapes of the network's float32 state tensors, except the `local` ones (FedBN's norms). */
export function sharedShapes(net: nn.Module, local: ReadonlySet<string> = new Set()): WeightShapes {
  const out: WeightShapes = new Map();
  for (const [name, t] of net.stateDict()) if (t.dtype === 'float32' && !local.has(name)) out.set(name, [...t.shape]);
  return out;
}

/** The values of the named state tensors of the network. */
export function readNetWeights(net: nn.Module, names: Iterable<string>): WeightValues {
  const state = net.stateDict();
  const out: WeightValues = new Map();
  for (const name of names) {
    const t = state.get(name);
    if (!t) throw new FederationError('WRONG_TENSORS', `the network has no tensor ${name}`);
    out.set(name, t.toFloat32Array());
  }
  return out;
}

/** Copies the values into the network's state tensors of those names; the others keep theirs. */
export function writeNetWeights(net: nn.Module, values: WeightValues): void {
  const state = net.stateDict();
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, v] of values) {
        const t = state.get(name);
        if (!t) throw new FederationError('WRONG_TENSORS', `the network has no tensor ${name}`);
        if (t.numel !== v.length) throw new FederationError('WRONG_TENSORS', `${name} has ${t.numel} values in the network, ${v.length} given`);
        t.copy_(torch.tensor(v, [...t.shape]));
      }
    }),
  );
}

/** Safetensors bytes of the values, with string metadata. */
export function encodeWeights(values: WeightValues, shapes: WeightShapes, metadata: Record<string, string> = {}): Buffer {
  return torch.tidy(() => {
    const tensors = new Map<string, torch.Tensor>();
    for (const [name, v] of values) {
      const shape = shapes.get(name);
      if (!shape) throw new FederationError('WRONG_TENSORS', `no shape for tensor ${name}`);
      tensors.set(name, torch.tensor(v, shape));
    }
    return torch.serializeSafetensors(tensors, metadata);
  });
}

/**
 * The values in safetensors bytes, which must hold exactly the `expected`
 * tensors, float32, of their shapes, every value finite.
 */
export function decodeWeights(bytes: Uint8Array, expected: WeightShapes, source: string): { values: WeightValues; metadata: Record<string, string> } {
  let parsed: ReturnType<typeof parseWeights>;
  try {
    parsed = parseWeights(bytes, source);
  } catch (e) {
    if (e instanceof MedsegIoError) throw new FederationError(e.code === 'TRUNCATED' ? 'TRUNCATED_WEIGHTS' : 'BAD_WEIGHTS', e.message);
    throw e;
  }
  const { tensors, metadata } = parsed;
  try {
    const values: WeightValues = new Map();
    for (const [name, shape] of expected) {
      const t = tensors.get(name);
      if (!t) throw new FederationError('WRONG_TENSORS', `${source}: tensor ${name} is missing`);
      if (t.dtype !== 'float32') throw new FederationError('WRONG_TENSORS', `${source}: ${name} is ${t.dtype}, not float32`);
      if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i]))
        throw new FederationError('WRONG_TENSORS', `${source}: ${name} has shape [${t.shape}], the model's is [${shape}]`);
      const v = t.toFloat32Array();
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new FederationError('NOT_FINITE', `${source}: ${name} holds ${v[i]} at ${i}`);
      values.set(name, v);
    }
    for (const name of tensors.keys()) if (!expected.has(name)) throw new FederationError('WRONG_TENSORS', `${source}: unexpected tensor ${name}`);
    return { values, metadata: typeof metadata === 'object' && metadata !== null ? metadata : {} };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Bytes of a safetensors encoding of `shapes` (a bound for a request body). */
export function encodedSize(shapes: WeightShapes): number {
  let n = 0;
  for (const [name, s] of shapes) n += 4 * s.reduce((a, b) => a * b, 1) + name.length + 96;
  return n + 4096;
}

/** The values of `shapes`' tensors one after another, in name order: the vector secure aggregation masks. */
export function flattenWeights(values: WeightValues, shapes: WeightShapes): Float64Array {
  const names = [...shapes.keys()].sort();
  const out = new Float64Array(names.reduce((n, name) => n + values.get(name)!.length, 0));
  let off = 0;
  for (const name of names) {
    out.set(values.get(name)!, off);
    off += values.get(name)!.length;
  }
  return out;
}

/** The inverse of flattenWeights. */
export function unflattenWeights(flat: ArrayLike<number>, shapes: WeightShapes): WeightValues {
  const out: WeightValues = new Map();
  let off = 0;
  for (const name of [...shapes.keys()].sort()) {
    const n = shapes.get(name)!.reduce((a, b) => a * b, 1);
    out.set(
      name,
      Float32Array.from({ length: n }, (_, i) => flat[off + i]!),
    );
    off += n;
  }
  if (off !== flat.length) throw new FederationError('WRONG_TENSORS', `a vector of ${flat.length} values for a model of ${off}`);
  return out;
}

/** Values in the shapes' tensors. */
export function valueCount(shapes: WeightShapes): number {
  let n = 0;
  for (const s of shapes.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
