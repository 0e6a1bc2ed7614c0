/**
 * Records the ATen ops of one forward pass as a graph (trace/graph.ts). Every
 * op goes through callNative (ops.ts); while a trace runs, an observer there
 * sees each call. Only ops that depend on the inputs become nodes: what the
 * forward computes from parameters and constants alone (masks, weight
 * slices) is folded into a constant, copied when an input-dependent op first
 * reads it. A forward that reads input-dependent values into JS (item(),
 * toArray()) cannot be traced: its control flow would depend on the data.
 */
import { noGrad } from '../autograd.ts';
import { dtypeFromCode, typedArrayFrom } from '../dtype.ts';
import { native, type NativeTensor } from '../native.ts';
import type { Module } from '../nn/module.ts';
import { setOpObserver, type OpObserver } from '../ops.ts';
import { tidy } from '../scope.ts';
import { Tensor } from '../tensor.ts';
import type { TraceArg, TracedGraph, TracedNode, TracedValue, ValueSource } from './graph.ts';

/** A forward that cannot be recorded as a graph; names the op and the module. */
export class TraceError extends Error {
  constructor(
    message: string,
    readonly op: string | null,
    readonly scope: string | null,
  ) {
    super(message);
    this.name = 'TraceError';
  }
}

const isHandle = (x: unknown): x is NativeTensor => x instanceof native.NativeTensor;

const where = (scope: string | null): string => (scope === null ? '' : ` in module '${scope || '<root>'}'`);

/** An op whose name ends in '_' writes into its first argument. */
const isInPlace = (qualified: string): boolean => {
  const dot = qualified.indexOf('.');
  return (dot < 0 ? qualified : qualified.slice(0, dot)).endsWith('_');
};

interface Token {
  op: string;
  args: TraceArg[];
  handles: NativeTensor[];
  dependent: boolean;
}

class Recorder implements OpObserver {
  readonly graph: TracedGraph = { values: [], nodes: [], inputs: [], outputs: [], params: [], constants: [] };
  private readonly byHandle = new WeakMap<NativeTensor, number>();
  readonly scopes: string[] = [];

  scope(): string | null {
    return this.scopes.length ? this.scopes[this.scopes.length - 1]! : null;
  }

  newValue(h: NativeTensor, source: ValueSource): number {
    const v: TracedValue = { id: this.graph.values.length, shape: [...h.shape], dtype: dtypeFromCode(h.dtypeCode), source };
    this.graph.values.push(v);
    this.byHandle.set(h, v.id);
    return v.id;
  }

  addParam(name: string, t: Tensor): void {
    if (this.byHandle.has(t.handle)) return; // a tensor registered under two names keeps the first
    const id = this.newValue(t.handle, { kind: 'param', name });
    this.graph.params.push({ name, value: id, tensor: t });
  }

  addInput(t: Tensor): void {
    if (this.byHandle.has(t.handle)) throw new TraceError('the same tensor is passed as two inputs (or is also a parameter)', null, null);
    const id = this.newValue(t.handle, { kind: 'input', index: this.graph.inputs.length });
    this.graph.inputs.push(id);
  }

  private dependsOnInput(id: number): boolean {
    const k = this.graph.values[id]!.source.kind;
    return k === 'input' || k === 'node';
  }

  /** The value of a handle, copying it as a constant when the trace has not seen it. */
  valueOf(h: NativeTensor): number {
    const known = this.byHandle.get(h);
    if (known !== undefined) return known;
    const id = this.newValue(h, { kind: 'const' });
    const data = typedArrayFrom(native.toBuffer(h), dtypeFromCode(h.dtypeCode));
    this.graph.constants.push({ value: id, data, scope: this.scope() });
    return id;
  }

  /** Like valueOf but without copying: whether the handle is input-dependent. */
  private isDependentHandle(h: NativeTensor): boolean {
    const id = this.byHandle.get(h);
    return id !== undefined && this.dependsOnInput(id);
  }

  before(op: string, rawArgs: unknown[]): Token {
    const handles: NativeTensor[] = [];
    let dependent = false;
    for (const a of rawArgs) {
      if (isHandle(a)) handles.push(a);
      else if (Array.isArray(a)) for (const x of a) if (isHandle(x)) handles.push(x);
    }
    for (const h of handles) if (this.isDependentHandle(h)) dependent = true;
    if (!dependent) return { op, args: [], handles, dependent };
    const args: TraceArg[] = rawArgs.map((a): TraceArg => {
      if (a === null || a === undefined) return { kind: 'none' };
      if (isHandle(a)) return { kind: 'tensor', value: this.valueOf(a) };
      if (typeof a === 'number' || typeof a === 'boolean' || typeof a === 'string') return { kind: 'scalar', value: a };
      if (Array.isArray(a)) {
        if (a.some(isHandle)) return { kind: 'tensors', values: a.map((x) => (isHandle(x) ? this.valueOf(x) : null)) };
        if (a.every((x) => typeof x === 'number' || typeof x === 'boolean')) return { kind: 'list', value: [...(a as (number | boolean)[])] };
      }
      return { kind: 'opaque', what: Object.prototype.toString.call(a) };
    });
    return { op, args, handles, dependent };
  }

  after(token: unknown, result: unknown): void {
    const t = token as Token;
    const results = Array.isArray(result) ? result : [result];
    if (!t.dependent) {
      // An op on constants: its outputs are copied if an input-dependent op reads them.
      // A constant written in place after it was copied is copied again at its next use.
      for (const r of results) {
        if (!isHandle(r)) continue;
        const id = this.byHandle.get(r);
        if (id !== undefined && this.graph.values[id]!.source.kind === 'const') this.byHandle.delete(r);
      }
      return;
    }
    const scope = this.scope();
    if (!results.every(isHandle)) {
      throw new TraceError(
        `${t.op} returns a plain value computed from the input${where(scope)}: a traced graph cannot depend on the data (control flow on values)`,
        t.op,
        scope,
      );
    }
    const inPlace = isInPlace(t.op);
    // A non-in-place op that hands back its own input (contiguous on a contiguous tensor) adds nothing.
    if (!inPlace && results.length === 1 && t.handles.includes(results[0] as NativeTensor) && this.byHandle.has(results[0] as NativeTensor)) return;
    const node: TracedNode = { index: this.graph.nodes.length, op: t.op, args: t.args, outputs: [], scope };
    for (let i = 0; i < results.length; i++) {
      node.outputs.push(this.newValue(results[i] as NativeTensor, { kind: 'node', node: node.index, output: i }));
    }
    this.graph.nodes.push(node);
  }

  read(h: NativeTensor): void {
    if (this.isDependentHandle(h)) {
      const scope = this.scope();
      throw new TraceError(`the forward reads input-dependent values into JS${where(scope)}: a traced graph cannot depend on the data`, null, scope);
    }
  }
}

/** Makes every module's forward push its dotted path while it runs; returns the undo. */
function instrumentScopes(root: Module, scopes: string[]): () => void {
  const undo: (() => void)[] = [];
  for (const [path, m] of root.namedModules()) {
    const self = m as unknown as { forward: (...a: unknown[]) => unknown };
    const own = Object.prototype.hasOwnProperty.call(self, 'forward');
    const previous = self.forward;
    self.forward = (...args: unknown[]) => {
      scopes.push(path);
      try {
        return previous.apply(m, args);
      } finally {
        scopes.pop();
      }
    };
    undo.push(() => {
      if (own) self.forward = previous;
      else delete (self as { forward?: unknown }).forward;
    });
  }
  return () => undo.reverse().forEach((f) => f());
}

function collectOutputs(out: unknown, acc: Tensor[]): void {
  if (out instanceof Tensor) acc.push(out);
  else if (Array.isArray(out)) for (const o of out) collectOutputs(o, acc);
  else if (out !== null && typeof out === 'object' && Object.getPrototypeOf(out) === Object.prototype) {
    for (const o of Object.values(out)) collectOutputs(o, acc);
  }
}

export interface TraceResult {
  graph: TracedGraph;
  /** What the forward returned, flattened (tensors, arrays, plain objects in order); the caller owns them. */
  outputs: Tensor[];
}

/**
 * Runs `forward` (default: module.forward(...inputs)) once without gradients
 * and records it. Parameters and buffers are named as in module.stateDict().
 * The module's train/eval mode is left as it is: trace an eval-mode module to
 * export inference.
 */
export function trace(module: Module, inputs: Tensor[], forward?: (...x: Tensor[]) => unknown): TraceResult {
  const rec = new Recorder();
  for (const [name, t] of module.stateDict()) rec.addParam(name, t);
  for (const x of inputs) rec.addInput(x);
  const run = forward ?? ((...x: Tensor[]) => (module as unknown as { forward: (...a: Tensor[]) => unknown }).forward(...x));
  const restoreScopes = instrumentScopes(module, rec.scopes);
  const previous = setOpObserver(rec);
  let outputs: Tensor[];
  try {
    outputs = tidy(() => {
      const acc: Tensor[] = [];
      collectOutputs(
        noGrad(() => run(...inputs)),
        acc,
      );
      return acc;
    });
  } finally {
    setOpObserver(previous);
    restoreScopes();
  }
  for (const o of outputs) rec.graph.outputs.push(rec.valueOf(o.handle));
  return { graph: rec.graph, outputs };
}
