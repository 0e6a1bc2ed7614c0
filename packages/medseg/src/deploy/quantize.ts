/**
 * Static int8 quantization of an exported fp32 ONNX model in QDQ form:
 * weights of Conv, weight-MatMul/Gemm (and ConvTranspose when asked) become
 * int8 initializers, symmetric per output channel, read through a
 * DequantizeLinear; biases become int32 at the scale input scale x weight
 * scale; the input and output of those nodes get a QuantizeLinear /
 * DequantizeLinear pair with a per-tensor asymmetric scale calibrated by
 * running the fp32 model on real patches with those tensors added as graph
 * outputs. The logits stay fp32. Everything else (InstanceNormalization,
 * activations, Add, Resize) stays fp32 between a DQ and the next Q, which
 * is the pattern onnxruntime fuses into its int8 kernels (QLinearConv,
 * QLinearMatMul, QLinearConcat).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { AbsHistogram } from './entropy-calibration.ts';

const { onnx } = onnxProto;
type Model = onnxProto.onnx.ModelProto;
type Graph = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

const DT = onnx.TensorProto.DataType;

/** How the activation ranges are found from the calibration outputs. */
export type Calibrator = { kind: 'minmax' } | { kind: 'percentile'; percentile: number } | { kind: 'entropy' };

/** One calibration input: float32 data in the model's input layout. */
export interface CalibrationInput {
  data: Float32Array;
  dims: number[];
}

export interface QuantizeOptions {
  /** Real patches the fp32 model is run on to find activation ranges (at least one). */
  calibration: CalibrationInput[];
  calibrator?: Calibrator;
  /** Activation type (default uint8, which onnxruntime's x86 int8 kernels pair with int8 weights). */
  activationType?: 'uint8' | 'int8';
  /**
   * Quantize ConvTranspose weights and input too (default false: onnxruntime's CPU provider has no
   * int8 ConvTranspose kernel and runs DequantizeLinear + fp32 ConvTranspose, which adds the error without the speed).
   */
  convTranspose?: boolean;
  /**
   * Quantize weight MatMul/Gemm statically too (default true); false leaves them fp32 for the
   * dynamic quantizer (quantize-dynamic.ts), which computes their input's range on every run.
   */
  linear?: boolean;
  /**
   * Weights in 7 bits, [-63, 63] (default true): onnxruntime's x86 uint8 x int8 kernels without VNNI
   * (AVX2 vpmaddubsw) add pairs of products in int16 and saturate, which 2 x 255 x 63 < 2^15 avoids
   * (on this project's AVX2 machine a random-weight 3D U-Net's logits are off by 29 % of their range
   * at 127, 13 % at 63); false uses [-127, 127], exact only on CPUs with VNNI.
   */
  reduceRange?: boolean;
  /** Graph input name (default: the model's first input). */
  inputName?: string;
  /** Extra metadata entries to record next to the quantization summary. */
  metadata?: Record<string, string>;
}

export interface QuantizationSummary {
  format: 'QDQ';
  weights: string;
  activations: string;
  calibrator: Calibrator;
  calibrationInputs: number;
  /** Quantized nodes by op type, and op types of weighted nodes left fp32 with why. */
  quantized: Record<string, number>;
  leftFp32: { op: string; reason: string }[];
  /** Activation tensors with a Q/DQ pair. */
  activationTensors: number;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  summary: QuantizationSummary;
  /** Calibrated activation ranges by tensor name. */
  ranges: Map<string, [number, number]>;
}

/** Bad quantization input (a model without the expected parts, no calibration data). */
export class QuantizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuantizeError';
  }
}

/** Metadata key of the quantization summary (JSON). */
export const QUANTIZATION_METADATA_KEY = 'medseg.quantization';

// ---------------------------------------------------------------- numbers

/** Round half to even, as QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // + 0 turns -0 into 0.
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0;
}

/**
 * Symmetric int8 quantization per channel along `axis` of a tensor of
 * `shape`: scale_c = max|w_c| / qmax (1 for an all-zero channel), q = round(w / scale_c) in [-qmax, qmax]
 * (qmax 127, or less for a reduced range).
 */
export function quantizeWeightsPerChannel(w: Float32Array, shape: number[], axis: number, qmax = 127): { q: Int8Array; scales: Float32Array } {
  const channels = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const maxAbs = new Float64Array(channels);
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let m = maxAbs[c]!;
      for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[base + i]!));
      maxAbs[c] = m;
    }
  const scales = Float32Array.from(maxAbs, (m) => (m > 0 ? m / qmax : 1));
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const s = scales[c]!;
      for (let i = 0; i < inner; i++) q[base + i] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[base + i]! / s)));
    }
  return { q, scales };
}

/** Per-tensor asymmetric scale and zero point for a range (widened to hold 0, as the quantized ops need an exact zero). */
export function activationParams(range: [number, number], type: 'uint8' | 'int8'): { scale: number; zeroPoint: number } {
  const lo = Math.min(range[0], 0);
  const hi = Math.max(range[1], 0);
  const [qmin, qmax] = type === 'uint8' ? [0, 255] : [-128, 127];
  if (hi - lo === 0) return { scale: 1, zeroPoint: type === 'uint8' ? 0 : -128 };
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  const zeroPoint = Math.max(qmin, Math.min(qmax, roundHalfEven(qmin - lo / scale)));
  return { scale, zeroPoint };
}

/** The value at fraction p (0..1) of sorted values, linearly interpolated between neighbours. */
function quantile(sorted: Float32Array, p: number): number {
  const pos = p * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

/**
 * Accumulates the range of one tensor over calibration batches. Min-max:
 * the overall minimum and maximum. Percentile p: per batch the values at
 * (100 - p) % and p % (interpolated), averaged over the batches, so memory
 * stays one batch of the tensor. Entropy: the min-max range clipped to
 * [-T, T], T the KL-divergence threshold of the histogram of |x|
 * (entropy-calibration.ts).
 */
export class RangeCollector {
  private lo = Infinity;
  private hi = -Infinity;
  private sumLo = 0;
  private sumHi = 0;
  private batches = 0;
  private readonly histogram: AbsHistogram | null;

  constructor(readonly calibrator: Calibrator) {
    this.histogram = calibrator.kind === 'entropy' ? new AbsHistogram() : null;
    if (calibrator.kind === 'percentile' && !(calibrator.percentile > 50 && calibrator.percentile <= 100)) {
      throw new QuantizeError(`percentile calibrator: percentile must be in (50, 100], got ${calibrator.percentile}`);
    }
  }

  add(values: Float32Array): void {
    if (values.length === 0) return;
    this.batches++;
    this.histogram?.add(values);
    if (this.calibrator.kind === 'percentile') {
      const sorted = Float32Array.from(values).sort();
      const p = this.calibrator.percentile / 100;
      this.sumLo += quantile(sorted, 1 - p);
      this.sumHi += quantile(sorted, p);
      return;
    }
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.lo = lo;
    this.hi = hi;
  }

  range(): [number, number] {
    if (this.batches === 0) throw new QuantizeError('no calibration values for a tensor');
    if (this.histogram) {
      const t = this.histogram.threshold();
      return [Math.max(this.lo, -t), Math.min(this.hi, t)];
    }
    return this.calibrator.kind === 'minmax' ? [this.lo, this.hi] : [this.sumLo / this.batches, this.sumHi / this.batches];
  }
}

// ---------------------------------------------------------------- graph reading

export function floatData(t: TensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new QuantizeError(`initializer ${t.name} is not float32`);
  if (t.rawData && t.rawData.length > 0) {
    const copy = Uint8Array.from(t.rawData);
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

const dims = (t: TensorProto): number[] => (t.dims ?? []).map(Number);

export function bytesOf(a: Float32Array | Int8Array | Uint8Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function attrInt(n: NodeProto, name: string, fallback: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? fallback : Number(a.i);
}

/** A weighted node: which input is the weight, the axis of its output channels, and the bias input if any. */
export interface WeightedNode {
  node: NodeProto;
  weight: TensorProto;
  axis: number;
  bias?: TensorProto;
}

/** Unique names in a graph and new initializers under them (the quantizers add tensors beside the model's own). */
export function graphNames(g: Graph, inits: Map<string, TensorProto>, producers: Map<string, NodeProto>) {
  const names = new Set<string>([...inits.keys(), ...producers.keys(), ...(g.input ?? []).map((v) => v.name ?? '')]);
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; names.has(name); i++) name = `${base}_${i}`;
    names.add(name);
    return name;
  };
  const newInits: TensorProto[] = [];
  const addInit = (base: string, dataType: number, shape: number[], data: Float32Array | Int8Array | Uint8Array | Int32Array): string => {
    const name = fresh(base);
    newInits.push({ name, dataType, dims: shape, rawData: bytesOf(data) });
    return name;
  };
  return { fresh, addInit, newInits };
}

// ---------------------------------------------------------------- the quantizer

/**
 * Quantizes an fp32 ONNX model (as export-onnx.ts writes them) to int8 QDQ.
 * Runs the fp32 model on the calibration inputs in onnxruntime first.
 */
export async function quantizeInt8(model: Uint8Array, o: QuantizeOptions): Promise<QuantizeResult> {
  if (o.calibration.length === 0) throw new QuantizeError('static quantization needs at least one calibration input');
  const calibrator = o.calibrator ?? { kind: 'minmax' };
  const actType = o.activationType ?? 'uint8';
  const m = onnx.ModelProto.decode(model);
  const g = m.graph;
  if (!g) throw new QuantizeError('the model has no graph');
  const inputName = o.inputName ?? g.input?.[0]?.name ?? '';
  const inits = new Map<string, TensorProto>((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const producers = new Map<string, NodeProto>();
  for (const n of g.node ?? []) if (!n.name) throw new QuantizeError(`a ${n.opType} node has no name; name every node`);
  for (const n of g.node ?? []) for (const out of n.output ?? []) producers.set(out, n);

  const leftFp32: QuantizationSummary['leftFp32'] = [];
  const weighted: WeightedNode[] = [];
  for (const n of g.node ?? []) {
    if (o.linear === false && (n.opType === 'MatMul' || n.opType === 'Gemm')) continue;
    const w = weightedNode(n, inits, producers, o.convTranspose ?? false, leftFp32);
    if (w) weighted.push(w);
  }
  if (weighted.length === 0) throw new QuantizeError('the model has no Conv, ConvTranspose, MatMul or Gemm with constant weights to quantize');

  // Activation tensors: the data input and the output of each weighted node. The network's output
  // (a tensor that is, or only feeds an Identity to, a graph output) stays fp32: logits keep their
  // full resolution for the argmax and softmax. A ConvTranspose left fp32 still gets its output
  // quantized, so the Concat with the skip connection after it runs on int8.
  const graphOutputs = new Set((g.output ?? []).map((v) => v.name ?? ''));
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node ?? []) for (const x of n.input ?? []) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const isNetworkOutput = (y: string): boolean =>
    graphOutputs.has(y) || (consumers.get(y) ?? []).every((c) => c.opType === 'Identity' && graphOutputs.has(c.output![0]!));
  const tensors = new Set<string>();
  for (const w of weighted) tensors.add(w.node.input![0]!);
  const outputsOf = [...weighted.map((w) => w.node), ...(g.node ?? []).filter((n) => n.opType === 'ConvTranspose' && !weighted.some((w) => w.node === n))];
  for (const n of outputsOf) {
    const y = n.output![0]!;
    if (!isNetworkOutput(y)) tensors.add(y);
  }
  const ranges = await calibrate(m, [...tensors], inputName, o.calibration, calibrator);

  const { fresh, addInit, newInits } = graphNames(g, inits, producers);

  // Q/DQ pairs for activations: nodes to insert after each producer (or at the start for graph inputs).
  const params = new Map<string, { scale: number; zeroPoint: number; scaleName: string; zpName: string; dq: string }>();
  const after = new Map<string, NodeProto[]>();
  const zpType = actType === 'uint8' ? DT.UINT8 : DT.INT8;
  for (const t of tensors) {
    const p = activationParams(ranges.get(t)!, actType);
    const scaleName = addInit(`${t}/scale`, DT.FLOAT, [], Float32Array.of(p.scale));
    const zpName = addInit(`${t}/zero_point`, zpType, [], actType === 'uint8' ? Uint8Array.of(p.zeroPoint) : Int8Array.of(p.zeroPoint));
    const q = fresh(`${t}/quantized`);
    const dq = fresh(`${t}/dequantized`);
    const key = producers.get(t)?.name ?? '';
    const list = after.get(key) ?? [];
    list.push(
      { opType: 'QuantizeLinear', name: fresh(`${t}/QuantizeLinear`), input: [t, scaleName, zpName], output: [q] },
      { opType: 'DequantizeLinear', name: fresh(`${t}/DequantizeLinear`), input: [q, scaleName, zpName], output: [dq] },
    );
    after.set(key, list);
    params.set(t, { ...p, scaleName, zpName, dq });
  }

  // Weights (and biases) become int8 (int32) initializers behind a per-channel DequantizeLinear.
  const weightDq: NodeProto[] = [];
  const quantized: Record<string, number> = {};
  const replacedInputs = new Map<NodeProto, Map<number, string>>();
  for (const w of weighted) {
    const shape = dims(w.weight);
    const { q, scales } = quantizeWeightsPerChannel(floatData(w.weight), shape, w.axis, (o.reduceRange ?? true) ? 63 : 127);
    const base = w.weight.name ?? 'weight';
    const qName = addInit(`${base}/int8`, DT.INT8, shape, q);
    const sName = addInit(`${base}/scale`, DT.FLOAT, [scales.length], scales);
    const zName = addInit(`${base}/zero_point`, DT.INT8, [scales.length], new Int8Array(scales.length));
    const wDq = fresh(`${base}/dequantized`);
    weightDq.push({
      opType: 'DequantizeLinear',
      name: fresh(`${base}/DequantizeLinear`),
      input: [qName, sName, zName],
      output: [wDq],
      attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: w.axis }],
    });
    const repl = new Map<number, string>([[1, wDq]]);
    if (w.bias) {
      const xScale = params.get(w.node.input![0]!)!.scale;
      const b = floatData(w.bias);
      const bScales = Float32Array.from(scales, (s) => Math.fround(s * xScale));
      const bq = Int32Array.from(b, (v, c) => Math.max(-2147483647, Math.min(2147483647, roundHalfEven(v / bScales[c]!))));
      const bBase = w.bias.name ?? 'bias';
      const bqName = addInit(`${bBase}/int32`, DT.INT32, [b.length], bq);
      const bsName = addInit(`${bBase}/scale`, DT.FLOAT, [b.length], bScales);
      const bzName = addInit(`${bBase}/zero_point`, DT.INT32, [b.length], new Int32Array(b.length));
      const bDq = fresh(`${bBase}/dequantized`);
      weightDq.push({
        opType: 'DequantizeLinear',
        name: fresh(`${bBase}/DequantizeLinear`),
        input: [bqName, bsName, bzName],
        output: [bDq],
        attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
      });
      repl.set(2, bDq);
    }
    replacedInputs.set(w.node, repl);
    quantized[w.node.opType!] = (quantized[w.node.opType!] ?? 0) + 1;
  }

  // Rewire: every consumer of a quantized tensor reads its DequantizeLinear output, except that tensor's own QuantizeLinear.
  const nodes: NodeProto[] = [...weightDq, ...(after.get('') ?? [])];
  for (const n of g.node ?? []) {
    const repl = replacedInputs.get(n);
    n.input = (n.input ?? []).map((x, i) => repl?.get(i) ?? params.get(x)?.dq ?? x);
    nodes.push(n, ...(after.get(n.name ?? '') ?? []));
  }

  // Drop the nodes (folded Transposes) and float weights nothing reads any more.
  const read = new Set<string>(graphOutputs);
  let live = nodes;
  for (let before = -1; before !== live.length;) {
    before = live.length;
    read.clear();
    for (const x of graphOutputs) read.add(x);
    for (const n of live) for (const x of n.input ?? []) read.add(x);
    live = live.filter((n) => (n.output ?? []).some((y) => read.has(y)));
  }
  g.node = live;
  g.initializer = [...(g.initializer ?? []).filter((t) => read.has(t.name ?? '')), ...newInits];

  const summary: QuantizationSummary = {
    format: 'QDQ',
    weights: `int8 symmetric per output channel in [-${(o.reduceRange ?? true) ? 63 : 127}, ${(o.reduceRange ?? true) ? 63 : 127}]`,
    activations: `${actType} asymmetric per tensor`,
    calibrator,
    calibrationInputs: o.calibration.length,
    quantized,
    leftFp32,
    activationTensors: tensors.size,
  };
  const meta = new Map((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  for (const [k, v] of Object.entries(o.metadata ?? {})) meta.set(k, v);
  meta.set(QUANTIZATION_METADATA_KEY, JSON.stringify(summary));
  m.metadataProps = [...meta].map(([key, value]) => ({ key, value }));
  return { bytes: onnx.ModelProto.encode(m).finish(), summary, ranges };
}

/** The weight, its output-channel axis and bias of a node this quantizer handles, or undefined (noted in leftFp32 when it has weights). */
export function weightedNode(
  n: NodeProto,
  inits: Map<string, TensorProto>,
  producers: Map<string, NodeProto>,
  convTranspose: boolean,
  leftFp32: QuantizationSummary['leftFp32'],
): WeightedNode | undefined {
  const op = n.opType ?? '';
  const inp = n.input ?? [];
  const w = inits.get(inp[1] ?? '');
  const bias = inp[2] ? inits.get(inp[2]) : undefined;
  if (op === 'Conv' || op === 'ConvTranspose') {
    if (!w || (inp[2] && !bias)) {
      leftFp32.push({ op, reason: `${n.name}: weight or bias is not a constant` });
      return undefined;
    }
    if (op === 'ConvTranspose' && !convTranspose) {
      leftFp32.push({
        op,
        reason: `${n.name}: onnxruntime's CPU provider has no int8 ConvTranspose kernel (it would run DequantizeLinear + fp32 ConvTranspose); weights stay fp32, its output is quantized`,
      });
      return undefined;
    }
    // ConvTranspose weights are [C_in, C_out / group, ...]: output channels on axis 1 (per group: only group 1 maps directly).
    if (op === 'ConvTranspose' && attrInt(n, 'group', 1) !== 1) {
      leftFp32.push({ op, reason: `${n.name}: grouped ConvTranspose` });
      return undefined;
    }
    return { node: n, weight: w, axis: op === 'Conv' ? 0 : 1, bias };
  }
  if (op === 'Gemm') {
    if (!w || attrInt(n, 'transA', 0) !== 0 || (inp[2] && !bias)) {
      leftFp32.push({ op, reason: `${n.name}: non-constant weight/bias or transA` });
      return undefined;
    }
    // Gemm's output features are B's axis 1, or axis 0 when transB; the bias must be per output feature.
    const axis = attrInt(n, 'transB', 0) ? 0 : 1;
    if (bias && dims(bias).length !== 1) {
      leftFp32.push({ op, reason: `${n.name}: bias is not one value per output feature` });
      return undefined;
    }
    return { node: n, weight: w, axis, bias };
  }
  if (op === 'MatMul' && w && dims(w).length === 2) return { node: n, weight: w, axis: 1 };
  // A linear layer exports as MatMul(x, Transpose(W)): fold the transpose into a [in, out] weight.
  const t = producers.get(inp[1] ?? '');
  const tw = t?.opType === 'Transpose' ? inits.get(t.input?.[0] ?? '') : undefined;
  if (op === 'MatMul' && tw && dims(tw).length === 2) {
    const [rows, cols] = dims(tw) as [number, number];
    const src = floatData(tw);
    const data = new Float32Array(src.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[c * rows + r] = src[r * cols + c]!;
    const folded: TensorProto = { name: `${tw.name}/transposed`, dataType: DT.FLOAT, dims: [cols, rows], rawData: bytesOf(data) };
    return { node: n, weight: folded, axis: 1 };
  }
  if (op === 'MatMul' && (w || tw)) leftFp32.push({ op, reason: `${n.name}: weight is not a matrix` });
  return undefined;
}

/** Runs the fp32 model with `tensors` as extra graph outputs on each calibration input and returns their ranges. */
async function calibrate(
  m: Model,
  tensors: string[],
  inputName: string,
  inputs: CalibrationInput[],
  calibrator: Calibrator,
): Promise<Map<string, [number, number]>> {
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(m).finish());
  const graph = copy.graph as Graph;
  const existing = new Set((graph.output ?? []).map((v) => v.name));
  for (const t of tensors) if (!existing.has(t)) graph.output!.push({ name: t, type: { tensorType: { elemType: DT.FLOAT } } });
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(copy).finish());
  const collectors = new Map(tensors.map((t) => [t, new RangeCollector(calibrator)]));
  try {
    for (const x of inputs) {
      const out = await session.run({ [inputName]: new ort.Tensor('float32', x.data, x.dims) }, tensors);
      for (const t of tensors) collectors.get(t)!.add(out[t]!.data as Float32Array);
    }
  } finally {
    await session.release();
  }
  return new Map(tensors.map((t) => [t, collectors.get(t)!.range()]));
}

/** Op types onnxruntime runs after its graph optimisations (QDQ fusion), by count: shows which int8 kernels a model gets. */
export async function optimizedOpCounts(model: Uint8Array): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-ort-optimized-'));
  try {
    const path = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'extended', optimizedModelFilePath: path });
    await session.release();
    const counts: Record<string, number> = {};
    for (const n of onnx.ModelProto.decode(readFileSync(path)).graph?.node ?? []) counts[n.opType ?? ''] = (counts[n.opType ?? ''] ?? 0) + 1;
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
