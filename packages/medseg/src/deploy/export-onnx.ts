/**
 * Exports a network's inference forward to ONNX: trace it in eval mode
 * without gradients on a sample input (and again with each axis that should
 * stay dynamic doubled), map every ATen op to ONNX nodes, and store the
 * parameters that the graph reads as initializers under their state-dict
 * names. Knows nothing of plans: see export-model.ts for that.
 */
import * as torch from '@medseg/torch';
import type { DynamicAxis, Tensor } from '@medseg/torch';
import { ExportContext, mapperFor, NeedsFixedAxis, UnsupportedOpError } from './aten-to-onnx.ts';

export { UnsupportedOpError };

export interface OnnxExportOptions {
  /** A sample input [N, C, ...spatial]; real data is best. Its size is the one a fixed axis keeps. */
  input: Tensor;
  /** Let the batch size vary (default true). */
  dynamicBatch?: boolean;
  /** Let spatial sizes vary where the architecture allows (default true). */
  dynamicSpatial?: boolean;
  /** Names of the graph's input and output (default 'image' and 'logits'). */
  inputName?: string;
  outputName?: string;
  /** metadata_props of the model, or a function of what the export found (dynamic and fixed axes, shapes). */
  metadata?: Record<string, string> | ((e: Omit<OnnxExport, 'bytes'>) => Record<string, string>);
  producerVersion?: string;
  docString?: string;
  /** The forward to trace (default net.forward(input)); must return one tensor. */
  forward?: (x: Tensor) => Tensor;
}

export interface OnnxExport {
  bytes: Uint8Array;
  /** Axes that stay dynamic, by name ('batch', 'd', 'h', 'w' or 'y', 'x'). */
  dynamicAxes: DynamicAxis[];
  /** Axes asked to be dynamic that stay at the sample's size, with why. */
  fixedAxes: { name: string; size: number; reason: string }[];
  /** The input and output shapes with axis names where dynamic. */
  inputShape: (number | string | null)[];
  outputShape: (number | string | null)[];
  /** ONNX node counts by op type. */
  opCounts: Record<string, number>;
}

const spatialNames = (dims: number): string[] => (dims === 3 ? ['d', 'h', 'w'] : dims === 2 ? ['h', 'w'] : ['l']);

/**
 * Exports `net` (switched to eval mode for the trace, restored afterwards).
 * Throws UnsupportedOpError naming the op and module when a layer has no
 * ONNX mapping, and the tracer's TraceError for forwards that read data.
 */
export function exportOnnx(net: torch.nn.Module, o: OnnxExportOptions): OnnxExport {
  const x = o.input;
  const axes: DynamicAxis[] = [];
  if (o.dynamicBatch ?? true) axes.push({ input: 0, axis: 0, name: 'batch' });
  if (o.dynamicSpatial ?? true) spatialNames(x.ndim - 2).forEach((name, i) => axes.push({ input: 0, axis: i + 2, name }));
  const forward = o.forward ?? ((t: Tensor) => (net as unknown as { forward(t: Tensor): Tensor }).forward(t));
  const wasTraining = net.training;
  net.eval();
  let dt: torch.DynamicTrace;
  try {
    dt = torch.traceDynamic(net, [x], axes, (t) => forward(t));
  } finally {
    net.train(wasTraining);
  }
  try {
    if (dt.graph.outputs.length !== 1) throw new Error(`ONNX export: the forward returns ${dt.graph.outputs.length} tensors; export one (the logits)`);
    for (;;) {
      try {
        return build(dt, x, o);
      } catch (e) {
        if (!(e instanceof NeedsFixedAxis)) throw e;
        for (const a of e.axes) dt.fix(a, `${e.op} in module '${e.scope || '<root>'}' needs a fixed ${a}`);
      }
    }
  } finally {
    torch.dispose(dt.outputs);
  }
}

function build(dt: torch.DynamicTrace, x: Tensor, o: OnnxExportOptions): OnnxExport {
  const inputName = o.inputName ?? 'image';
  const outputName = o.outputName ?? 'logits';
  const g = dt.graph;
  const c = new ExportContext(dt, [inputName]);
  const inputShape = dt.shape(g.inputs[0]!).map((s) => c.dimOf(s));
  c.b.addInput(inputName, g.values[g.inputs[0]!]!.dtype, inputShape);
  c.bind(g.inputs[0]!, inputName);

  // Initializers: the parameters and constants some node (or the output) reads.
  const read = new Set<number>(g.outputs);
  for (const n of g.nodes) for (const id of torch.nodeInputs(n)) read.add(id);
  for (const p of g.params) {
    if (!read.has(p.value)) continue;
    const v = g.values[p.value]!;
    const data = torch.tidy(() => p.tensor.contiguous().toTypedArray());
    c.bind(p.value, c.b.initializer(c.b.fresh(p.name), v.dtype, v.shape, data));
  }
  g.constants.forEach((k, i) => {
    const v = g.values[k.value]!;
    const name = c.b.fresh(`${k.scope ? `${k.scope}/` : ''}constant_${i}`);
    c.b.initializer(name, v.dtype, v.shape, k.data);
    c.bind(k.value, name);
  });

  for (const n of g.nodes) {
    const map = mapperFor(n.op);
    if (!map) throw new UnsupportedOpError(n.op, n.scope);
    c.node = n;
    map(c);
  }
  const out = g.outputs[0]!;
  const outputShape = dt.shape(out).map((s) => c.dimOf(s));
  c.b.node('Identity', [c.nameOf(out)], {}, [outputName], 'output');
  c.b.addOutput(outputName, g.values[out]!.dtype, outputShape);
  const found: Omit<OnnxExport, 'bytes'> = {
    dynamicAxes: dt.axes,
    fixedAxes: dt.fixed.map((f) => ({ name: f.axis.name, size: x.shape[f.axis.axis]!, reason: f.reason })),
    inputShape,
    outputShape,
    opCounts: Object.fromEntries(c.b.opCounts()),
  };
  const bytes = c.b.encode({
    graphName: 'medseg',
    producerVersion: o.producerVersion ?? '0',
    docString: o.docString,
    metadata: typeof o.metadata === 'function' ? o.metadata(found) : o.metadata,
  });
  return { bytes, ...found };
}
