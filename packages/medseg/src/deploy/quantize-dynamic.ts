/**
 * Dynamic int8 quantization of the linear layers (the transformer blocks'
 * projections and MLPs): every MatMul with a constant weight matrix (a
 * linear layer exports as MatMul(x, Transpose(W)); the transpose is folded)
 * becomes
 *
 *   x -> DynamicQuantizeLinear -> (x_q uint8, x_scale, x_zero_point)
 *   MatMulInteger(x_q, W_q int8, x_zero_point) -> Cast(float) -> Mul(x_scale * w_scale)
 *
 * with W_q symmetric per output column (scale max|w| / 63, zero point 0:
 * a reduced range, see below) and x's range computed from the tensor itself
 * on every run, so no calibration is needed. This is the pattern onnxruntime fuses into its
 * DynamicQuantizeMatMul kernel (int8 GEMM with VNNI on x86). MatMuls of two
 * activations (attention scores and their product with the values) stay
 * fp32: their second operand changes with the input.
 *
 * The weights use 7 bits ([-63, 63]) by default: onnxruntime's x86 kernel
 * for uint8 x int8 without VNNI (AVX2 vpmaddubsw) adds pairs of products in
 * int16 and saturates, and 2 x 255 x 63 stays below 2^15 where 2 x 255 x 127
 * does not (on an AVX2 machine without VNNI, one test layer is off by 0.4 at 127
 * and exact at 63).
 */
import onnxProto from 'onnx-proto';
import { graphNames, quantizeWeightsPerChannel, QuantizeError, weightedNode, floatData, type QuantizationSummary } from './quantize.ts';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** Metadata key of the dynamic quantization summary (JSON). */
export const DYNAMIC_QUANTIZATION_METADATA_KEY = 'medseg.dynamic-quantization';

export interface DynamicQuantizationSummary {
  format: 'dynamic';
  weights: string;
  activations: 'uint8 asymmetric per tensor, range computed on every run (DynamicQuantizeLinear)';
  /** MatMuls quantized. */
  quantized: number;
  /** MatMuls left fp32, with why. */
  leftFp32: { node: string; reason: string }[];
}

/**
 * Quantizes the weight MatMuls of an ONNX model (fp32, or static QDQ with its MatMuls left fp32) dynamically.
 * `reduceRange` (default true) keeps the weights in [-63, 63] (module comment); false uses [-127, 127] (exact on VNNI CPUs only).
 */
export function quantizeDynamicLinear(model: Uint8Array, o: { reduceRange?: boolean } = {}): { bytes: Uint8Array; summary: DynamicQuantizationSummary } {
  const qmax = (o.reduceRange ?? true) ? 63 : 127;
  const m = onnx.ModelProto.decode(model);
  const g = m.graph;
  if (!g) throw new QuantizeError('the model has no graph');
  const inits = new Map<string, TensorProto>((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const producers = new Map<string, NodeProto>();
  for (const n of g.node ?? []) for (const out of n.output ?? []) producers.set(out, n);
  const { fresh, addInit, newInits } = graphNames(g, inits, producers);

  const leftFp32: DynamicQuantizationSummary['leftFp32'] = [];
  const replaced = new Map<NodeProto, NodeProto[]>();
  for (const n of g.node ?? []) {
    if (n.opType !== 'MatMul') continue;
    const notes: QuantizationSummary['leftFp32'] = [];
    const w = weightedNode(n, inits, producers, false, notes);
    if (!w) {
      leftFp32.push({ node: n.name ?? '', reason: notes[0]?.reason ?? 'both operands are activations (attention)' });
      continue;
    }
    const shape = (w.weight.dims ?? []).map(Number);
    const { q, scales } = quantizeWeightsPerChannel(floatData(w.weight), shape, 1, qmax);
    const base = w.weight.name ?? 'weight';
    const qName = addInit(`${base}/int8`, DT.INT8, shape, q);
    const sName = addInit(`${base}/scale`, DT.FLOAT, [scales.length], scales);
    const x = n.input![0]!;
    const y = n.output![0]!;
    const at = n.name ?? y;
    const xq = fresh(`${at}/x_quantized`);
    const xs = fresh(`${at}/x_scale`);
    const xz = fresh(`${at}/x_zero_point`);
    const acc = fresh(`${at}/int32`);
    const accF = fresh(`${at}/int32_float`);
    const scale = fresh(`${at}/output_scale`);
    replaced.set(n, [
      { opType: 'DynamicQuantizeLinear', name: fresh(`${at}/DynamicQuantizeLinear`), input: [x], output: [xq, xs, xz] },
      { opType: 'MatMulInteger', name: fresh(`${at}/MatMulInteger`), input: [xq, qName, xz], output: [acc] },
      {
        opType: 'Cast',
        name: fresh(`${at}/Cast`),
        input: [acc],
        output: [accF],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: DT.FLOAT }],
      },
      { opType: 'Mul', name: fresh(`${at}/ScaleMul`), input: [xs, sName], output: [scale] },
      { opType: 'Mul', name: fresh(`${at}/OutputMul`), input: [accF, scale], output: [y] },
    ]);
  }
  const nodes = (g.node ?? []).flatMap((n) => replaced.get(n) ?? [n]);
  // Drop the weight transposes and float weights nothing reads any more.
  const outputs = new Set((g.output ?? []).map((v) => v.name ?? ''));
  let live = nodes;
  let read = new Set<string>();
  for (let before = -1; before !== live.length;) {
    before = live.length;
    read = new Set(outputs);
    for (const n of live) for (const i of n.input ?? []) read.add(i);
    live = live.filter((n) => (n.output ?? []).some((o) => read.has(o)));
  }
  g.node = live;
  g.initializer = [...(g.initializer ?? []).filter((t) => read.has(t.name ?? '')), ...newInits];
  if (!m.opsetImport?.some((o) => (o.domain ?? '') === '' && Number(o.version) >= 11)) throw new QuantizeError('dynamic quantization needs opset >= 11');

  const summary: DynamicQuantizationSummary = {
    format: 'dynamic',
    weights: `int8 symmetric per output column in [-${qmax}, ${qmax}]`,
    activations: 'uint8 asymmetric per tensor, range computed on every run (DynamicQuantizeLinear)',
    quantized: replaced.size,
    leftFp32,
  };
  const meta = new Map((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  meta.set(DYNAMIC_QUANTIZATION_METADATA_KEY, JSON.stringify(summary));
  m.metadataProps = [...meta].map(([key, value]) => ({ key, value }));
  return { bytes: onnx.ModelProto.encode(m).finish(), summary };
}
