/**
 * Maps a traced forward (ATen ops, see @medseg/torch's trace) to ONNX nodes,
 * opset 17. Each ATen op has one function here; integers that follow a
 * dynamic axis (reshape targets, resize sizes) become small shape
 * computations on the graph input, every other integer stays a number.
 * Parameters become initializers under their state-dict names.
 */
import type { DynamicTrace, SymInt, TraceArg, TracedNode, TracedValue } from '@medseg/torch';
import { elemType as elemOf, OnnxBuilder, type AttrValue, type Dim } from './onnx-builder.ts';

/** An ATen op (or an argument of one) that has no ONNX mapping here. */
export class UnsupportedOpError extends Error {
  constructor(
    readonly op: string,
    readonly scope: string | null,
    detail = '',
  ) {
    super(
      `ONNX export: ATen op '${op}'${detail ? ` (${detail})` : ''} in module '${scope || '<root>'}' has no ONNX mapping; ` +
        'change the layer or add a mapping in deploy/aten-to-onnx.ts',
    );
    this.name = 'UnsupportedOpError';
  }
}

/** An integer that follows dynamic axis `axes` where the ONNX op needs a fixed number; the exporter fixes the axis and retries. */
export class NeedsFixedAxis extends Error {
  constructor(
    readonly axes: string[],
    readonly op: string,
    readonly scope: string | null,
  ) {
    super(`${op} in module '${scope || '<root>'}' needs a fixed number where ${axes.join(', ')} appears`);
  }
}

/** 'To the end' for Slice: ONNX clamps ends to the axis size. */
const TO_END = Number.MAX_SAFE_INTEGER;

export class ExportContext {
  readonly b = new OnnxBuilder();
  private readonly names = new Map<number, string>();
  private readonly dimCache = new Map<string, string>();
  node!: TracedNode;

  constructor(
    readonly dt: DynamicTrace,
    readonly inputNames: string[],
  ) {}

  value(id: number): TracedValue {
    return this.dt.graph.values[id]!;
  }
  nameOf(id: number): string {
    const n = this.names.get(id);
    if (n === undefined) throw new Error(`ONNX export: value ${id} is used before it is defined`);
    return n;
  }
  bind(id: number, name: string): void {
    this.names.set(id, name);
  }
  private arg(i: number): TraceArg {
    return this.node.args[i] ?? { kind: 'none' };
  }
  unsupported(detail: string): UnsupportedOpError {
    return new UnsupportedOpError(this.node.op, this.node.scope, detail);
  }

  /** Tensor argument i (its ONNX name). */
  t(i: number): string {
    const a = this.arg(i);
    if (a.kind !== 'tensor') throw this.unsupported(`argument ${i} is not a tensor`);
    return this.nameOf(a.value);
  }
  /** Optional tensor argument i: its name or null. */
  tOpt(i: number): string | null {
    const a = this.arg(i);
    return a.kind === 'none' ? null : this.t(i);
  }
  /** The traced value id of tensor argument i. */
  valueId(i: number): number {
    const a = this.arg(i);
    if (a.kind !== 'tensor') throw this.unsupported(`argument ${i} is not a tensor`);
    return a.value;
  }
  /** Metadata of tensor argument i. */
  meta(i: number): TracedValue {
    const a = this.arg(i);
    if (a.kind !== 'tensor') throw this.unsupported(`argument ${i} is not a tensor`);
    return this.value(a.value);
  }
  rank(i: number): number {
    return this.meta(i).shape.length;
  }
  tensors(i: number): string[] {
    const a = this.arg(i);
    if (a.kind !== 'tensors' || a.values.some((v) => v === null)) throw this.unsupported(`argument ${i} is not a tensor list`);
    return a.values.map((v) => this.nameOf(v!));
  }
  isNone(i: number): boolean {
    return this.arg(i).kind === 'none';
  }

  private fixedCheck(s: SymInt): number {
    const axes = this.dt.axes.filter((_, j) => s.exps[j]! > 0).map((a) => a.name);
    if (axes.length) throw new NeedsFixedAxis(axes, this.node.op, this.node.scope);
    return s.base;
  }
  /** A number argument (fixed; an integer that follows a dynamic axis throws NeedsFixedAxis). */
  num(i: number, fallback?: number): number {
    const a = this.arg(i);
    if (a.kind === 'none' && fallback !== undefined) return fallback;
    if (a.kind !== 'scalar' || typeof a.value !== 'number') throw this.unsupported(`argument ${i} is not a number`);
    if (Number.isInteger(a.value)) this.fixedCheck(this.dt.arg(this.node.index, i));
    return a.value;
  }
  bool(i: number, fallback?: boolean): boolean {
    const a = this.arg(i);
    if (a.kind === 'none' && fallback !== undefined) return fallback;
    if (a.kind !== 'scalar' || typeof a.value !== 'boolean') throw this.unsupported(`argument ${i} is not a bool`);
    return a.value;
  }
  str(i: number, fallback?: string): string {
    const a = this.arg(i);
    if (a.kind === 'none' && fallback !== undefined) return fallback;
    if (a.kind !== 'scalar' || typeof a.value !== 'string') throw this.unsupported(`argument ${i} is not a string`);
    return a.value;
  }
  /** Fixed integer list argument i; a single number is repeated `n` times (PyTorch's int[N] arguments). */
  ints(i: number, n?: number): number[] {
    const a = this.arg(i);
    if (a.kind === 'scalar' && typeof a.value === 'number') {
      const v = this.num(i);
      return new Array(n ?? 1).fill(v);
    }
    if (a.kind !== 'list') throw this.unsupported(`argument ${i} is not an integer list`);
    a.value.forEach((_, j) => this.fixedCheck(this.dt.arg(this.node.index, i, j)));
    const v = a.value.map(Number);
    return n !== undefined && v.length === 1 ? new Array(n).fill(v[0]) : v;
  }
  /** Integer list argument i as expressions (dynamic entries follow the input's size). */
  symInts(i: number): SymInt[] {
    const a = this.arg(i);
    if (a.kind === 'scalar') return [this.dt.arg(this.node.index, i, 0)];
    if (a.kind !== 'list') throw this.unsupported(`argument ${i} is not an integer list`);
    return a.value.map((_, j) => this.dt.arg(this.node.index, i, j));
  }

  /** The size of dynamic axis j as a [1] int64 tensor, read from the graph input. */
  private axisSize(j: number): string {
    const ax = this.dt.axes[j]!;
    const k = `axis${j}`;
    let n = this.dimCache.get(k);
    if (!n) {
      const shape = this.b.op('Shape', [this.inputNames[ax.input]!], {}, `shape_of_input${ax.input}`);
      n = this.b.op('Gather', [shape, this.b.ints([ax.axis])], { axis: 0 }, `size_${ax.name}`);
      this.dimCache.set(k, n);
    }
    return n;
  }
  /** One integer as a [1] int64 tensor: a constant, or num/den * prod(size^e) computed in the graph. */
  private symTensor(s: SymInt): string {
    if (s.exps.every((e) => e === 0)) return this.b.ints([s.base]);
    const k = `${s.num}/${s.den}*${s.exps.join(',')}`;
    const known = this.dimCache.get(k);
    if (known) return known;
    let acc: string | null = null;
    s.exps.forEach((e, j) => {
      for (let r = 0; r < e; r++) acc = acc === null ? this.axisSize(j) : this.b.op('Mul', [acc, this.axisSize(j)]);
    });
    let out = acc!;
    if (s.num !== 1) out = this.b.op('Mul', [out, this.b.ints([s.num])]);
    if (s.den !== 1) out = this.b.op('Div', [out, this.b.ints([s.den])]);
    this.dimCache.set(k, out);
    return out;
  }
  /** A 1-D int64 shape tensor for a list of expressions (a constant initializer when all are fixed). */
  shapeTensor(list: SymInt[]): string {
    if (list.every((s) => s.exps.every((e) => e === 0))) return this.b.ints(list.map((s) => s.base));
    return this.b.op(
      'Concat',
      list.map((s) => this.symTensor(s)),
      { axis: 0 },
    );
  }
  /** The dimension of a graph input or output: a size, an axis name (when it is exactly one dynamic axis), or unknown. */
  dimOf(s: SymInt): Dim {
    if (s.exps.every((e) => e === 0)) return s.base;
    const j = s.exps.findIndex((e) => e > 0);
    const single = s.exps.every((e, k) => (k === j ? e === 1 : e === 0)) && s.num === 1 && s.den === 1;
    return single ? this.dt.axes[j]!.name : null;
  }
  /** A scalar constant (rank 0) for elementwise ops with a tensor of `dtype` (float32 by default). */
  scalar(v: number, dtype: string = 'float32'): string {
    if (dtype === 'int64' && Number.isInteger(v)) return this.b.constant('int64', [], [v]);
    if (dtype !== 'float32') throw this.unsupported(`a scalar operand with a ${dtype} tensor`);
    return this.b.constant('float32', [], [v]);
  }
  /** The traced size of dim `d` of value `id`, which the ONNX op needs as a number: throws NeedsFixedAxis when it follows a dynamic axis. */
  fixedDim(id: number, d: number): number {
    return this.fixedCheck(this.dt.shape(id)[d]!);
  }

  /** Emits a node named after the traced node's module. */
  emit(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, outputs: string[] | number = 1): string[] {
    const scope = this.node.scope ? `${this.node.scope}/` : '';
    return this.b.node(opType, inputs, attrs, outputs, `${scope}${opType}`);
  }
  emit1(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}): string {
    return this.emit(opType, inputs, attrs)[0]!;
  }
  /** Binds output k of the traced node to an ONNX name. */
  out(name: string, k = 0): void {
    this.bind(this.node.outputs[k]!, name);
  }
}

type Mapper = (c: ExportContext) => void;

const norm = (d: number, rank: number): number => (d < 0 ? d + rank : d);

function conv(c: ExportContext): void {
  const w = c.meta(1);
  const n = w.shape.length - 2;
  const pad = convPadding(c, n);
  c.out(
    c.emit1('Conv', [c.t(0), c.t(1), ...(c.isNone(2) ? [] : [c.t(2)])], {
      kernel_shape: w.shape.slice(2),
      strides: c.ints(3, n),
      pads: [...pad, ...pad],
      dilations: c.ints(5, n),
      group: c.num(6),
    }),
  );
}

function convTranspose(c: ExportContext): void {
  const w = c.meta(1);
  const n = w.shape.length - 2;
  const pad = c.ints(4, n);
  c.out(
    c.emit1('ConvTranspose', [c.t(0), c.t(1), ...(c.isNone(2) ? [] : [c.t(2)])], {
      kernel_shape: w.shape.slice(2),
      strides: c.ints(3, n),
      pads: [...pad, ...pad],
      output_padding: c.ints(5, n),
      group: c.num(6),
      dilations: c.ints(7, n),
    }),
  );
}

/** Conv padding (argument 4) per spatial axis; the 'same'/'valid' string overloads are not mapped. */
function convPadding(c: ExportContext, n: number): number[] {
  const a = c.node.args[4];
  if (a?.kind === 'scalar' && typeof a.value === 'string') throw c.unsupported("string padding ('same'/'valid'); pass numbers");
  return c.ints(4, n);
}

/** A per-channel affine parameter, or a constant of ones/zeros when the module has none. */
function channelParam(c: ExportContext, i: number, channels: number, fill: number): string {
  return c.isNone(i) ? c.b.constant('float32', [channels], new Array(channels).fill(fill)) : c.t(i);
}

function batchNorm(c: ExportContext): void {
  if (c.bool(5)) throw c.unsupported('batch statistics (training mode); export a model in eval mode');
  if (c.isNone(3) || c.isNone(4)) throw c.unsupported('batch norm without running statistics');
  const ch = c.meta(0).shape[1]!;
  c.out(c.emit1('BatchNormalization', [c.t(0), channelParam(c, 1, ch, 1), channelParam(c, 2, ch, 0), c.t(3), c.t(4)], { epsilon: { float: c.num(7) } }));
}

function instanceNorm(c: ExportContext): void {
  if (!c.bool(5)) throw c.unsupported('instance norm with running statistics');
  const ch = c.meta(0).shape[1]!;
  c.out(c.emit1('InstanceNormalization', [c.t(0), channelParam(c, 1, ch, 1), channelParam(c, 2, ch, 0)], { epsilon: { float: c.num(7) } }));
}

/** Group norm as instance norm over [N, G, rest], reshaped back, then the per-channel affine. */
function groupNorm(c: ExportContext): void {
  const x = c.t(0);
  const rank = c.rank(0);
  const ch = c.meta(0).shape[1]!;
  const g = c.num(1);
  const grouped = c.emit1('Reshape', [x, c.b.ints([0, g, -1])]);
  const normed = c.emit1(
    'InstanceNormalization',
    [grouped, c.b.constant('float32', [g], new Array(g).fill(1)), c.b.constant('float32', [g], new Array(g).fill(0))],
    {
      epsilon: { float: c.num(4) },
    },
  );
  let y = c.emit1('Reshape', [normed, c.emit1('Shape', [x])]);
  const perChannel = c.b.ints([ch, ...new Array(rank - 2).fill(1)]);
  if (!c.isNone(2)) y = c.emit1('Mul', [y, c.emit1('Reshape', [c.t(2), perChannel])]);
  if (!c.isNone(3)) y = c.emit1('Add', [y, c.emit1('Reshape', [c.t(3), perChannel])]);
  c.out(y);
}

function layerNorm(c: ExportContext): void {
  const shape = c.ints(1);
  const rank = c.rank(0);
  const size = shape.reduce((a, b) => a * b, 1);
  const scale = c.isNone(2) ? c.b.constant('float32', shape, new Array(size).fill(1)) : c.t(2);
  c.out(c.emit1('LayerNormalization', [c.t(0), scale, ...(c.isNone(3) ? [] : [c.t(3)])], { axis: rank - shape.length, epsilon: { float: c.num(4) } }));
}

const unary =
  (opType: string): Mapper =>
  (c) =>
    c.out(c.emit1(opType, [c.t(0)]));

/** a (op) b*alpha for add/sub with a tensor or scalar second operand. */
const binary =
  (opType: string, hasAlpha: boolean): Mapper =>
  (c) => {
    const a = c.t(0);
    const bIsTensor = c.node.args[1]?.kind === 'tensor';
    const dtype = c.meta(0).dtype;
    let b = bIsTensor ? c.t(1) : c.scalar(c.num(1), dtype);
    const alpha = hasAlpha ? c.num(2, 1) : 1;
    if (alpha !== 1) b = c.emit1('Mul', [b, c.scalar(alpha, dtype)]);
    c.out(c.emit1(opType, [a, b]));
  };

function rsub(c: ExportContext): void {
  const alpha = c.num(2, 1);
  const self = alpha === 1 ? c.t(0) : c.emit1('Mul', [c.t(0), c.scalar(alpha)]);
  c.out(c.emit1('Sub', [c.scalar(c.num(1)), self]));
}

function gelu(c: ExportContext): void {
  const approximate = c.str(1, 'none');
  if (approximate !== 'none') throw c.unsupported(`approximate='${approximate}'`);
  const x = c.t(0);
  // 0.5 * x * (1 + erf(x / sqrt(2))): opset 17 has no Gelu.
  const e = c.emit1('Erf', [c.emit1('Div', [x, c.scalar(Math.SQRT2)])]);
  c.out(c.emit1('Mul', [c.emit1('Mul', [x, c.scalar(0.5)]), c.emit1('Add', [e, c.scalar(1)])]));
}

function linear(c: ExportContext): void {
  const wt = c.emit1('Transpose', [c.t(1)], { perm: [1, 0] });
  const y = c.emit1('MatMul', [c.t(0), wt]);
  c.out(c.isNone(2) ? y : c.emit1('Add', [y, c.t(2)]));
}

function softmax(opType: string): Mapper {
  return (c) => {
    if (!c.isNone(2)) throw c.unsupported('a dtype argument');
    c.out(c.emit1(opType, [c.t(0)], { axis: c.num(1) }));
  };
}

function transpose(c: ExportContext): void {
  const rank = c.rank(0);
  const perm = Array.from({ length: rank }, (_, i) => i);
  const a = norm(c.num(1), rank);
  const b = norm(c.num(2), rank);
  [perm[a], perm[b]] = [perm[b]!, perm[a]!];
  c.out(c.emit1('Transpose', [c.t(0)], { perm }));
}

function permute(c: ExportContext): void {
  const rank = c.rank(0);
  c.out(c.emit1('Transpose', [c.t(0)], { perm: c.ints(1).map((d) => norm(d, rank)) }));
}

function reshape(c: ExportContext): void {
  c.out(c.emit1('Reshape', [c.t(0), c.shapeTensor(c.symInts(1))]));
}

/** Reshape to the traced output's shape, as expressions (flatten, expand-free views). */
function reshapeToOutput(c: ExportContext): void {
  c.out(c.emit1('Reshape', [c.t(0), c.shapeTensor(c.dt.shape(c.node.outputs[0]!))]));
}

function reduce(opType: string): Mapper {
  return (c) => {
    if (c.node.args.length > 3 && !c.isNone(3)) throw c.unsupported('a dtype argument');
    const rank = c.rank(0);
    const axes = c.ints(1).map((d) => norm(d, rank));
    const keep = c.bool(2, false) ? 1 : 0;
    if (opType === 'ReduceSum') c.out(c.emit1(opType, [c.t(0), c.b.ints(axes)], { keepdims: keep }));
    else c.out(c.emit1(opType, [c.t(0)], { axes, keepdims: keep }));
  };
}

function reduceAll(opType: string): Mapper {
  return (c) => c.out(c.emit1(opType, [c.t(0)], { keepdims: 0 }));
}

function cat(c: ExportContext): void {
  c.out(c.emit1('Concat', c.tensors(0), { axis: c.num(1, 0) }));
}

function stack(c: ExportContext): void {
  const dim = c.num(1, 0);
  const rank = c.dt.graph.values[c.node.outputs[0]!]!.shape.length;
  const axes = c.b.ints([norm(dim, rank)]);
  c.out(
    c.emit1(
      'Concat',
      c.tensors(0).map((t) => c.emit1('Unsqueeze', [t, axes])),
      { axis: norm(dim, rank) },
    ),
  );
}

/** Splits along a dim into the traced outputs' sizes (unbind also drops the dim). */
function split(drop: boolean, dimArg: number): Mapper {
  return (c) => {
    const rank = c.rank(0);
    const dim = norm(c.num(dimArg, 0), rank);
    // Split takes the part sizes as numbers: a split along a dynamic axis fixes it.
    const sizes = c.node.outputs.map((o) => (drop ? 1 : c.fixedDim(o, dim)));
    if (drop) c.fixedDim(c.valueId(0), dim);
    const parts = c.emit('Split', [c.t(0), c.b.ints(sizes)], { axis: dim }, sizes.length);
    parts.forEach((p, k) => c.out(drop ? c.emit1('Squeeze', [p, c.b.ints([dim])]) : p, k));
  };
}

/** torch.roll as slices and a concat per rolled dim. */
function roll(c: ExportContext): void {
  const rank = c.rank(0);
  const shifts = c.ints(1);
  const dims = c.ints(2).map((d) => norm(d, rank));
  if (dims.length !== shifts.length) throw c.unsupported('roll without dims (flattened roll)');
  let x = c.t(0);
  const id = c.valueId(0);
  dims.forEach((d, k) => {
    const L = c.fixedDim(id, d);
    const s = ((shifts[k]! % L) + L) % L;
    if (s === 0) return;
    const axes = c.b.ints([d]);
    const tail = c.emit1('Slice', [x, c.b.ints([-s]), c.b.ints([TO_END]), axes]);
    const head = c.emit1('Slice', [x, c.b.ints([0]), c.b.ints([-s]), axes]);
    x = c.emit1('Concat', [tail, head], { axis: d });
  });
  c.out(x === c.t(0) ? c.emit1('Identity', [x]) : x);
}

/** upsample_*.vec(x, size | None, [align_corners,] scales | None): Resize with sizes or scales. */
function resize(linear: boolean): Mapper {
  return (c) => {
    const x = c.t(0);
    const scalesArg = linear ? 3 : 2;
    const attrs: Record<string, AttrValue> = linear
      ? { mode: 'linear', coordinate_transformation_mode: c.bool(2) ? 'align_corners' : 'pytorch_half_pixel' }
      : { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
    if (!c.isNone(1)) {
      const nc = c.emit1('Slice', [c.emit1('Shape', [x]), c.b.ints([0]), c.b.ints([2])]);
      const sizes = c.emit1('Concat', [nc, c.shapeTensor(c.symInts(1))], { axis: 0 });
      c.out(c.emit1('Resize', [x, '', '', sizes], attrs));
    } else {
      const a = c.node.args[scalesArg];
      if (!a || a.kind !== 'list') throw c.unsupported('neither size nor scale factors');
      c.out(c.emit1('Resize', [x, '', c.b.constant('float32', [a.value.length + 2], [1, 1, ...a.value.map(Number)])], attrs));
    }
  };
}

function pool(opType: 'MaxPool' | 'AveragePool'): Mapper {
  return (c) => {
    const n = c.rank(0) - 2;
    const kernel = c.ints(1, n);
    const stride = c.isNone(2) || (c.node.args[2]?.kind === 'list' && (c.node.args[2] as { value: unknown[] }).value.length === 0) ? kernel : c.ints(2, n);
    const pad = c.ints(3, n);
    const attrs: Record<string, AttrValue> = { kernel_shape: kernel, strides: stride, pads: [...pad, ...pad] };
    if (opType === 'MaxPool') {
      attrs.dilations = c.ints(4, n);
      attrs.ceil_mode = c.bool(5) ? 1 : 0;
    } else {
      attrs.ceil_mode = c.bool(4) ? 1 : 0;
      attrs.count_include_pad = c.bool(5) ? 1 : 0;
      if (c.node.args.length > 6 && !c.isNone(6)) throw c.unsupported('divisor_override');
    }
    c.out(c.emit1(opType, [c.t(0)], attrs));
  };
}

function adaptiveAvgPool(c: ExportContext): void {
  const n = c.rank(0) - 2;
  if (c.ints(1, n).some((v) => v !== 1)) throw c.unsupported('an output size other than 1 (only global pooling maps to ONNX)');
  c.out(c.emit1('GlobalAveragePool', [c.t(0)]));
}

/** PyTorch's pad list runs (before, after) from the last dim backwards; ONNX wants all begins then all ends. */
function padOp(modeArg: number | null, valueArg: number): Mapper {
  return (c) => {
    const rank = c.rank(0);
    const p = c.ints(1);
    const begins = new Array(rank).fill(0);
    const ends = new Array(rank).fill(0);
    for (let k = 0; k < p.length / 2; k++) {
      begins[rank - 1 - k] = p[2 * k]!;
      ends[rank - 1 - k] = p[2 * k + 1]!;
    }
    if ([...begins, ...ends].some((v) => v < 0)) throw c.unsupported('negative padding (cropping)');
    const mode = modeArg === null ? 'constant' : c.str(modeArg, 'constant');
    const onnxMode = mode === 'replicate' ? 'edge' : mode;
    if (!['constant', 'reflect', 'edge'].includes(onnxMode)) throw c.unsupported(`pad mode '${mode}'`);
    const value = onnxMode === 'constant' ? [c.scalar(c.isNone(valueArg) ? 0 : c.num(valueArg))] : [];
    c.out(c.emit1('Pad', [c.t(0), c.b.ints([...begins, ...ends]), ...value], { mode: onnxMode }));
  };
}

function sliceOp(c: ExportContext): void {
  const rank = c.rank(0);
  const dim = norm(c.num(1, 0), rank);
  const start = c.isNone(2) ? c.b.ints([0]) : c.shapeTensor(c.symInts(2));
  const end = c.isNone(3) ? c.b.ints([TO_END]) : c.shapeTensor(c.symInts(3));
  c.out(c.emit1('Slice', [c.t(0), start, end, c.b.ints([dim]), c.b.ints([c.num(4, 1)])]));
}

/** flip as a Slice with step -1 from the last element to before the first, per flipped axis. */
function flip(c: ExportContext): void {
  const rank = c.rank(0);
  const dims = c.ints(1).map((d) => norm(d, rank));
  const n = dims.length;
  c.out(c.emit1('Slice', [c.t(0), c.b.ints(new Array(n).fill(-1)), c.b.ints(new Array(n).fill(-TO_END)), c.b.ints(dims), c.b.ints(new Array(n).fill(-1))]));
}

function narrow(c: ExportContext): void {
  const rank = c.rank(0);
  const dim = norm(c.num(1), rank);
  const start = c.num(2);
  c.out(c.emit1('Slice', [c.t(0), c.b.ints([start]), c.b.ints([start + c.num(3)]), c.b.ints([dim])]));
}

function select(c: ExportContext): void {
  const rank = c.rank(0);
  c.out(c.emit1('Gather', [c.t(0), c.b.constant('int64', [], [c.num(2)])], { axis: norm(c.num(1), rank) }));
}

function unsqueeze(c: ExportContext): void {
  const rank = c.rank(0) + 1;
  c.out(c.emit1('Unsqueeze', [c.t(0), c.b.ints([norm(c.num(1), rank)])]));
}

function squeeze(c: ExportContext): void {
  // Axes from the traced shape: a squeezed axis cannot be dynamic (the traces at two sizes would differ in rank).
  const shape = c.meta(0).shape;
  const axes = c.isNone(1) ? shape.flatMap((s, i) => (s === 1 ? [i] : [])) : [norm(c.num(1), shape.length)].filter((d) => shape[d] === 1);
  c.out(axes.length ? c.emit1('Squeeze', [c.t(0), c.b.ints(axes)]) : c.emit1('Identity', [c.t(0)]));
}

function expand(c: ExportContext): void {
  c.out(c.emit1('Expand', [c.t(0), c.shapeTensor(c.dt.shape(c.node.outputs[0]!))]));
}

function clamp(c: ExportContext): void {
  const lo = c.isNone(1) ? '' : c.scalar(c.num(1));
  const hi = c.isNone(2) ? '' : c.scalar(c.num(2));
  c.out(c.emit1('Clip', [c.t(0), lo, hi]));
}

function maskedFill(c: ExportContext): void {
  c.out(c.emit1('Where', [c.t(1), c.scalar(c.num(2)), c.t(0)]));
}

function powScalar(c: ExportContext): void {
  c.out(c.emit1('Pow', [c.t(0), c.scalar(c.num(1))]));
}

function leakyRelu(c: ExportContext): void {
  c.out(c.emit1('LeakyRelu', [c.t(0)], { alpha: { float: c.num(1, 0.01) } }));
}

function toDtype(c: ExportContext): void {
  const out = c.dt.graph.values[c.node.outputs[0]!]!;
  c.out(c.emit1('Cast', [c.t(0)], { to: elemOf(out.dtype) }));
}

const identity: Mapper = (c) => c.out(c.emit1('Identity', [c.t(0)]));

export const MAPPERS: Record<string, Mapper> = {
  'aten::conv1d': conv,
  'aten::conv2d': conv,
  'aten::conv3d': conv,
  'aten::conv_transpose1d': convTranspose,
  'aten::conv_transpose2d.input': convTranspose,
  'aten::conv_transpose3d.input': convTranspose,
  'aten::batch_norm': batchNorm,
  'aten::instance_norm': instanceNorm,
  'aten::group_norm': groupNorm,
  'aten::layer_norm': layerNorm,
  'aten::relu': unary('Relu'),
  'aten::sigmoid': unary('Sigmoid'),
  'aten::tanh': unary('Tanh'),
  'aten::exp': unary('Exp'),
  'aten::log': unary('Log'),
  'aten::sqrt': unary('Sqrt'),
  'aten::neg': unary('Neg'),
  'aten::abs': unary('Abs'),
  'aten::erf': unary('Erf'),
  'aten::reciprocal': unary('Reciprocal'),
  'aten::leaky_relu': leakyRelu,
  'aten::gelu': gelu,
  'aten::add.Tensor': binary('Add', true),
  'aten::add.Scalar': binary('Add', true),
  'aten::sub.Tensor': binary('Sub', true),
  'aten::sub.Scalar': binary('Sub', true),
  'aten::mul.Tensor': binary('Mul', false),
  'aten::mul.Scalar': binary('Mul', false),
  'aten::div.Tensor': binary('Div', false),
  'aten::div.Scalar': binary('Div', false),
  'aten::maximum': binary('Max', false),
  'aten::minimum': binary('Min', false),
  'aten::rsub.Scalar': rsub,
  'aten::gt.Scalar': binary('Greater', false),
  'aten::gt.Tensor': binary('Greater', false),
  'aten::lt.Scalar': binary('Less', false),
  'aten::lt.Tensor': binary('Less', false),
  'aten::ge.Scalar': binary('GreaterOrEqual', false),
  'aten::ge.Tensor': binary('GreaterOrEqual', false),
  'aten::le.Scalar': binary('LessOrEqual', false),
  'aten::le.Tensor': binary('LessOrEqual', false),
  'aten::eq.Scalar': binary('Equal', false),
  'aten::eq.Tensor': binary('Equal', false),
  'aten::pow.Tensor_Scalar': powScalar,
  'aten::clamp': clamp,
  'aten::masked_fill.Scalar': maskedFill,
  'aten::where.self': (c) => c.out(c.emit1('Where', [c.t(0), c.t(1), c.t(2)])),
  'aten::linear': linear,
  'aten::matmul': (c) => c.out(c.emit1('MatMul', [c.t(0), c.t(1)])),
  'aten::bmm': (c) => c.out(c.emit1('MatMul', [c.t(0), c.t(1)])),
  'aten::mm': (c) => c.out(c.emit1('MatMul', [c.t(0), c.t(1)])),
  'aten::softmax.int': softmax('Softmax'),
  'aten::log_softmax.int': softmax('LogSoftmax'),
  'aten::transpose.int': transpose,
  'aten::t': (c) => c.out(c.emit1('Transpose', [c.t(0)], { perm: [1, 0] })),
  'aten::permute': permute,
  'aten::reshape': reshape,
  'aten::view': reshape,
  'aten::flatten.using_ints': reshapeToOutput,
  'aten::unsqueeze': unsqueeze,
  'aten::squeeze': squeeze,
  'aten::squeeze.dim': squeeze,
  'aten::expand': expand,
  'aten::mean.dim': reduce('ReduceMean'),
  'aten::sum.dim_IntList': reduce('ReduceSum'),
  'aten::amax': reduce('ReduceMax'),
  'aten::amin': reduce('ReduceMin'),
  'aten::mean': reduceAll('ReduceMean'),
  'aten::sum': reduceAll('ReduceSum'),
  'aten::cat': cat,
  'aten::stack': stack,
  'aten::unbind.int': split(true, 1),
  'aten::chunk': split(false, 2),
  'aten::split.Tensor': split(false, 2),
  'aten::roll': roll,
  'aten::upsample_nearest1d.vec': resize(false),
  'aten::upsample_nearest2d.vec': resize(false),
  'aten::upsample_nearest3d.vec': resize(false),
  'aten::upsample_linear1d.vec': resize(true),
  'aten::upsample_bilinear2d.vec': resize(true),
  'aten::upsample_trilinear3d.vec': resize(true),
  'aten::max_pool1d': pool('MaxPool'),
  'aten::max_pool2d': pool('MaxPool'),
  'aten::max_pool3d': pool('MaxPool'),
  'aten::avg_pool1d': pool('AveragePool'),
  'aten::avg_pool2d': pool('AveragePool'),
  'aten::avg_pool3d': pool('AveragePool'),
  'aten::adaptive_avg_pool1d': adaptiveAvgPool,
  'aten::adaptive_avg_pool2d': adaptiveAvgPool,
  'aten::adaptive_avg_pool3d': adaptiveAvgPool,
  'aten::pad': padOp(2, 3),
  'aten::constant_pad_nd': padOp(null, 2),
  'aten::slice.Tensor': sliceOp,
  'aten::narrow': narrow,
  'aten::flip': flip,
  'aten::select.int': select,
  'aten::index_select': (c) => c.out(c.emit1('Gather', [c.t(0), c.t(2)], { axis: norm(c.num(1), c.rank(0)) })),
  'aten::to.dtype': toDtype,
  'aten::contiguous': identity,
  'aten::clone': identity,
  'aten::detach': identity,
};

/** The mapper for an op; an in-place op ('aten::add_.Tensor') maps as its out-of-place twin. */
export function mapperFor(op: string): Mapper | undefined {
  const direct = MAPPERS[op];
  if (direct) return direct;
  const m = /^(aten::\w+)_(\..*)?$/.exec(op);
  return m ? MAPPERS[`${m[1]}${m[2] ?? ''}`] : undefined;
}
