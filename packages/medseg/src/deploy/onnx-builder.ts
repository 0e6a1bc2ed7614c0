/**
 * Builds an ONNX model (nodes, initializers, inputs/outputs, metadata) and
 * encodes it with the ONNX schema package: names are made unique here,
 * small constants become initializers, and tensors are stored as raw
 * little-endian bytes.
 */
import onnxProto from 'onnx-proto';
import type { AnyTypedArray, DType } from '@medseg/torch';

const { onnx } = onnxProto;

/** ONNX opset this exporter targets (LayerNormalization needs 17). */
export const OPSET = 17;
/** IR version that goes with opset 17. */
export const IR_VERSION = 8;

const ELEM: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int16: onnx.TensorProto.DataType.INT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  float16: onnx.TensorProto.DataType.FLOAT16,
  bfloat16: onnx.TensorProto.DataType.BFLOAT16,
  float64: onnx.TensorProto.DataType.DOUBLE,
};

export const elemType = (d: DType): number => ELEM[d];

export type AttrValue = number | string | number[] | { floats: number[] } | { float: number };

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`ONNX attribute ${name}: ${v} is not an integer; pass { float } for floats`);
    return { name, type: T.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.FLOAT, f: v.float };
}

/** Dimension of a graph input or output: a size, a symbolic name, or unknown (null). */
export type Dim = number | string | null;

function valueInfo(name: string, dtype: DType, shape: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) },
      },
    },
  };
}

function rawBytes(data: AnyTypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class OnnxBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();

  /** A fresh name starting with `base`. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Adds a node; `outputs` are names (made with fresh()) or a count of fresh ones. Returns the output names. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, outputs: string[] | number = 1, name?: string): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(`${name ?? opType}:out`)) : outputs;
    const attribute_ = Object.entries(attrs)
      .filter((e): e is [string, AttrValue] => e[1] !== undefined)
      .map(([k, v]) => attribute(k, v));
    this.nodes.push({ opType, input: inputs, output: outs, name: this.fresh(name ?? opType), attribute: attribute_ });
    return outs;
  }

  /** Shorthand for a one-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, name?: string): string {
    return this.node(opType, inputs, attrs, 1, name)[0]!;
  }

  initializer(name: string, dtype: DType, shape: number[], data: AnyTypedArray): string {
    this.initializers.push({ name, dataType: ELEM[dtype], dims: shape, rawData: rawBytes(data) });
    return name;
  }

  /** A small constant initializer, shared between uses of equal value. */
  constant(dtype: 'int64' | 'float32', shape: number[], values: number[]): string {
    const k = `${dtype}[${shape.join(',')}]${values.join(',')}`;
    const known = this.constCache.get(k);
    if (known) return known;
    const data = dtype === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values);
    const name = this.initializer(this.fresh(`const_${dtype}`), dtype, shape, data);
    this.constCache.set(k, name);
    return name;
  }

  ints(values: number[]): string {
    return this.constant('int64', [values.length], values);
  }

  addInput(name: string, dtype: DType, shape: Dim[]): void {
    this.inputs.push(valueInfo(name, dtype, shape));
  }

  addOutput(name: string, dtype: DType, shape: Dim[]): void {
    this.outputs.push(valueInfo(name, dtype, shape));
  }

  encode(o: { graphName: string; producerVersion: string; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'medseg',
      producerVersion: o.producerVersion,
      docString: o.docString ?? '',
      graph: { name: o.graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
      metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /** Node count by op type (for tests and messages). */
  opCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const n of this.nodes) m.set(n.opType!, (m.get(n.opType!) ?? 0) + 1);
    return m;
  }
}

/** Decodes a model's metadata_props (the inverse of encode's metadata). */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const m = onnx.ModelProto.decode(bytes);
  return Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}

/** Opset, IR version and op types of an encoded model. */
export function describeOnnx(bytes: Uint8Array): { irVersion: number; opset: number; ops: string[]; initializers: number } {
  const m = onnx.ModelProto.decode(bytes);
  return {
    irVersion: Number(m.irVersion),
    opset: Number(m.opsetImport[0]?.version ?? 0),
    ops: [...new Set((m.graph?.node ?? []).map((n) => n.opType ?? ''))].sort(),
    initializers: m.graph?.initializer?.length ?? 0,
  };
}
