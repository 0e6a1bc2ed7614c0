/**
 * Which integers of a trace follow the input's size. A trace records
 * concrete numbers (a reshape to [2, 64, 4096]); to export a graph whose
 * batch or spatial size may change, the forward is traced again with one
 * input axis doubled at a time, and every integer argument and every value's
 * shape is compared with the base trace. An integer that is k * prod(size_j ^ e_j)
 * in each comparison (its ratio a power of two) becomes that expression; an
 * axis whose doubling changes the op sequence, a constant, a float argument,
 * or an integer in a way no such expression explains stays fixed, with the
 * reason kept.
 */
import type { Module } from '../nn/module.ts';
import { cat } from '../creation.ts';
import { dispose } from '../scope.ts';
import type { Tensor } from '../tensor.ts';
import type { TracedGraph } from './graph.ts';
import { trace } from './tracer.ts';

/** An input axis that may change size: graph input `input`, axis `axis`, called `name` in the exported model. */
export interface DynamicAxis {
  input: number;
  axis: number;
  name: string;
}

/** k * prod(size_j ^ exps[j]) over the dynamic axes, with k = num / den; `base` is its value in the base trace. */
export interface SymInt {
  base: number;
  num: number;
  den: number;
  exps: number[];
}

export interface DynamicTrace {
  graph: TracedGraph;
  /** What the base forward returned; the caller owns them. */
  outputs: Tensor[];
  /** Axes that stay dynamic, in the order SymInt.exps refers to. */
  axes: DynamicAxis[];
  /** Axes asked for that stay fixed, each with why. */
  fixed: { axis: DynamicAxis; reason: string }[];
  /** Integer argument `item` (0 for a scalar) of argument `arg` of node `node`. */
  arg(node: number, arg: number, item?: number): SymInt;
  /** The shape of a value as expressions. */
  shape(value: number): SymInt[];
  /** Fixes an axis after the fact (an exporter that needs a number where the axis would appear); later expressions ignore it. */
  fix(name: string, reason: string): void;
}

const key = (node: number, arg: number, item: number): string => `${node}:${arg}:${item}`;

/** Integer arguments of a trace by position key, and whether the trace's structure (ops, arg kinds, constants, floats) matches another. */
function integers(g: TracedGraph): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of g.nodes) {
    n.args.forEach((a, i) => {
      if (a.kind === 'scalar' && typeof a.value === 'number' && Number.isInteger(a.value)) out.set(key(n.index, i, 0), a.value);
      else if (a.kind === 'list') a.value.forEach((v, j) => typeof v === 'number' && out.set(key(n.index, i, j), v));
    });
  }
  return out;
}

function structuralDifference(a: TracedGraph, b: TracedGraph): string | null {
  // Constants first: a constant that follows the size (a resized position embedding, a shift mask) is the usual cause.
  const made = '(made from parameters or without the input)';
  if (a.constants.length !== b.constants.length) {
    const count = (g: TracedGraph) => g.constants.reduce((m, c) => m.set(c.scope ?? '', (m.get(c.scope ?? '') ?? 0) + 1), new Map<string, number>());
    const ca = count(a);
    const cb = count(b);
    const scope = [...new Set([...ca.keys(), ...cb.keys()])].find((k) => ca.get(k) !== cb.get(k)) ?? '';
    return `a constant read in module '${scope}' ${made} appears with the size`;
  }
  for (let i = 0; i < a.constants.length; i++) {
    const c = a.constants[i]!;
    const d = b.constants[i]!;
    const same = c.data.length === d.data.length && c.data.every((v, j) => v === d.data[j]);
    if (!same) return `a constant read in module '${c.scope ?? ''}' ${made} changes with the size`;
  }
  if (a.nodes.length !== b.nodes.length) return `the number of ops changes (${a.nodes.length} -> ${b.nodes.length})`;
  for (let i = 0; i < a.nodes.length; i++) {
    const x = a.nodes[i]!;
    const y = b.nodes[i]!;
    if (x.op !== y.op) return `op ${i} changes from ${x.op} to ${y.op} (module '${x.scope ?? ''}')`;
    if (x.args.length !== y.args.length) return `${x.op} (module '${x.scope ?? ''}') changes its arguments`;
    for (let k = 0; k < x.args.length; k++) {
      const p = x.args[k]!;
      const q = y.args[k]!;
      if (p.kind !== q.kind) return `${x.op} (module '${x.scope ?? ''}') changes argument ${k}`;
      if (p.kind === 'scalar' && q.kind === 'scalar' && p.value !== q.value && !(Number.isInteger(p.value) && Number.isInteger(q.value))) {
        return `${x.op} (module '${x.scope ?? ''}') argument ${k} changes (${String(p.value)} -> ${String(q.value)})`;
      }
      if (p.kind === 'list' && q.kind === 'list' && p.value.length !== q.value.length)
        return `${x.op} (module '${x.scope ?? ''}') argument ${k} changes length`;
      if (p.kind === 'tensor' && q.kind === 'tensor' && p.value !== q.value) return `${x.op} (module '${x.scope ?? ''}') reads different values`;
    }
  }
  return null;
}

/** log2 of ratio when it is a power of two, else null. */
function exponent(base: number, varied: number): number | null {
  if (base === varied) return 0;
  if (base === 0 || Math.sign(base) !== Math.sign(varied)) return null;
  const e = Math.log2(varied / base);
  return Number.isInteger(e) && e > 0 ? e : null;
}

function rational(k: number): { num: number; den: number } | null {
  for (let den = 1; den <= 4096; den++) {
    const num = k * den;
    if (Math.abs(num - Math.round(num)) < 1e-9 * Math.max(1, Math.abs(num))) return { num: Math.round(num), den };
  }
  return null;
}

/** Doubles one axis of one input by repeating it (a real input twice over keeps divisibility and value ranges). */
function doubled(inputs: Tensor[], a: DynamicAxis): Tensor[] {
  return inputs.map((x, i) => (i === a.input ? cat([x, x], a.axis) : x));
}

/**
 * Traces `module` on `inputs` and once more per axis in `axes` with that axis
 * doubled, and relates the traces (see the file comment).
 */
export function traceDynamic(module: Module, inputs: Tensor[], axes: DynamicAxis[], forward?: (...x: Tensor[]) => unknown): DynamicTrace {
  const base = trace(module, inputs, forward);
  const baseInts = integers(base.graph);
  const baseSize = (a: DynamicAxis): number => inputs[a.input]!.shape[a.axis]!;
  interface Variant {
    axis: DynamicAxis;
    /** Exponent of this axis in each integer argument and in each value's shape entries. */
    argExp: Map<string, number>;
    shapeExp: number[][];
  }
  const variants: Variant[] = [];
  const fixed: { axis: DynamicAxis; reason: string }[] = [];
  for (const a of axes) {
    const varied = doubled(inputs, a);
    let other: ReturnType<typeof trace>;
    try {
      other = trace(module, varied, forward);
    } catch (e) {
      fixed.push({ axis: a, reason: `the forward fails at ${a.name} x2: ${(e as Error).message}` });
      dispose(varied.filter((t, i) => t !== inputs[i]));
      continue;
    }
    dispose(varied.filter((t, i) => t !== inputs[i]));
    dispose(other.outputs);
    const diff = structuralDifference(base.graph, other.graph);
    if (diff) {
      fixed.push({ axis: a, reason: diff });
      continue;
    }
    const argExp = new Map<string, number>();
    let reason: string | null = null;
    for (const [k, v] of integers(other.graph)) {
      const e = exponent(baseInts.get(k)!, v);
      if (e === null) {
        const node = base.graph.nodes[Number(k.split(':')[0])]!;
        reason = `${node.op} (module '${node.scope ?? ''}') takes ${baseInts.get(k)} -> ${v}, not a multiple by a power of two`;
        break;
      }
      if (e) argExp.set(k, e);
    }
    const shapeExp: number[][] = [];
    for (let v = 0; v < base.graph.values.length && !reason; v++) {
      const s0 = base.graph.values[v]!.shape;
      const s1 = other.graph.values[v]!.shape;
      if (s0.length !== s1.length) reason = `value ${v} changes rank`;
      else {
        const es = s0.map((d, i) => exponent(d, s1[i]!));
        if (es.some((e) => e === null))
          reason = `a shape in module '${base.graph.nodes[(base.graph.values[v]!.source as { node?: number }).node ?? 0]?.scope ?? ''}' changes by a non-power-of-two factor`;
        shapeExp.push(es as number[]);
      }
    }
    if (reason) fixed.push({ axis: a, reason });
    else variants.push({ axis: a, argExp, shapeExp });
  }

  let live = variants;
  const expr = (baseValue: number, exps: number[]): SymInt => {
    const denom = live.reduce((p, vr, j) => p * baseSize(vr.axis) ** exps[j]!, 1);
    const r = exps.some((e) => e > 0) ? rational(baseValue / denom) : { num: baseValue, den: 1 };
    if (!r) throw new Error(`dynamic trace: ${baseValue} / ${denom} has no small rational form`);
    return { base: baseValue, num: r.num, den: r.den, exps };
  };
  return {
    graph: base.graph,
    outputs: base.outputs,
    get axes() {
      return live.map((v) => v.axis);
    },
    fixed,
    arg(node, arg, item = 0) {
      const k = key(node, arg, item);
      const v = baseInts.get(k);
      if (v === undefined) throw new Error(`dynamic trace: node ${node} argument ${arg}[${item}] is not an integer`);
      return expr(
        v,
        live.map((vr) => vr.argExp.get(k) ?? 0),
      );
    },
    shape(value) {
      return base.graph.values[value]!.shape.map((d, i) =>
        expr(
          d,
          live.map((vr) => vr.shapeExp[value]![i]!),
        ),
      );
    },
    fix(name, reason) {
      const v = live.find((x) => x.axis.name === name);
      if (!v) return;
      live = live.filter((x) => x !== v);
      fixed.push({ axis: v.axis, reason });
    },
  };
}
