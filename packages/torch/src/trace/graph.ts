/**
 * The traced graph: what one forward pass did, op by op, as ATen calls. Every
 * tensor is a value numbered in creation order; a value comes from a graph
 * input, a named parameter or buffer, a constant (a tensor the forward made
 * without looking at its inputs, with its values copied), or an op's output.
 */
import type { AnyTypedArray, DType } from '../dtype.ts';
import type { Tensor } from '../tensor.ts';

export type ValueSource =
  { kind: 'input'; index: number } | { kind: 'param'; name: string } | { kind: 'const' } | { kind: 'node'; node: number; output: number };

export interface TracedValue {
  id: number;
  shape: number[];
  dtype: DType;
  source: ValueSource;
}

/** One argument of an op call, in schema order. */
export type TraceArg =
  | { kind: 'tensor'; value: number }
  /** A tensor list (cat, stack, index): null entries stand for `None`. */
  | { kind: 'tensors'; values: (number | null)[] }
  /** null or undefined: the schema default or None. */
  | { kind: 'none' }
  | { kind: 'scalar'; value: number | boolean | string }
  | { kind: 'list'; value: (number | boolean)[] }
  /** Anything else (a random generator): ops that take it cannot be exported. */
  | { kind: 'opaque'; what: string };

export interface TracedNode {
  index: number;
  /** Qualified ATen name with overload, as called: 'aten::conv2d', 'aten::add.Tensor'. */
  op: string;
  args: TraceArg[];
  outputs: number[];
  /** Dotted path of the innermost module whose forward made the call ('' for the root, null outside any module). */
  scope: string | null;
}

export interface TracedParam {
  name: string;
  value: number;
  tensor: Tensor;
}

export interface TracedConstant {
  value: number;
  data: AnyTypedArray;
  /** Module path where the constant was first used. */
  scope: string | null;
}

export interface TracedGraph {
  values: TracedValue[];
  nodes: TracedNode[];
  inputs: number[];
  outputs: number[];
  params: TracedParam[];
  constants: TracedConstant[];
}

/** The op sequence as 'name' strings, for tests and messages. */
export function opSequence(g: TracedGraph): string[] {
  return g.nodes.map((n) => n.op);
}

/** Values a node reads, in argument order. */
export function nodeInputs(n: TracedNode): number[] {
  const out: number[] = [];
  for (const a of n.args) {
    if (a.kind === 'tensor') out.push(a.value);
    else if (a.kind === 'tensors') for (const v of a.values) if (v !== null) out.push(v);
  }
  return out;
}
