/**
 * What a traced forward (packages/torch trace) says about a network's
 * channels, for pruning: which output channels of which layers can be
 * removed together, every tensor axis those channels index, and which
 * weighted layers make the network's outputs.
 *
 * Each convolution (or transposed convolution) makes a run of channels, an
 * atom, keyed by its weight, so a layer called twice (a recurrent unit) makes
 * one. Ops that keep channels apart pass their input's layout on: norms with
 * one statistic per channel, activations, dropout, resizing, pooling, padding,
 * spatial slices and spatial reductions. A concatenation along channels joins
 * layouts end to end (a skip connection); an elementwise add or multiply of two
 * channel-carrying tensors unites their atoms into one group, so channels
 * joined by a residual add are pruned together or not at all. Every other op
 * (reshapes, permutes, matmuls, reductions over channels, grouped convs, group
 * norms, whose group count is fixed) may mix channels: the groups of its
 * inputs are frozen, and so are the network's inputs, its outputs (the logits
 * of every head) and any group a parameter read by such an op indexes.
 */
import * as torch from '@medseg/torch';
import type { TracedGraph, TracedNode } from '@medseg/torch';

/** One axis of a parameter or buffer indexed by channels: the atoms along it, in order. */
export interface AxisUse {
  /** State-dict name. */
  name: string;
  axis: number;
  layout: number[];
  /**
   * 'out': the weight of a layer that makes these channels (its filters score them);
   * 'in': a weight that reads them; 'channel': one value per channel (a bias, norm parameters, running statistics).
   */
  role: 'out' | 'in' | 'channel';
}

/** Channels that are pruned together: one atom or several united by adds. */
export interface ChannelGroup {
  id: number;
  size: number;
  /** Why these channels stay whole (null: they may be pruned). */
  frozen: string | null;
  /** Weights that make these channels (role 'out'). */
  producers: string[];
}

export interface ChannelAnalysis {
  uses: AxisUse[];
  groups: ChannelGroup[];
  /** The group of an atom. */
  groupOf(atom: number): number;
  atomSize(atom: number): number;
}

/** Union-find over atoms, each with its size and, once frozen, why. */
class Atoms {
  private readonly parent: number[] = [];
  private readonly sizes: number[] = [];
  private readonly why: (string | null)[] = [];

  make(size: number, frozen: string | null): number {
    const id = this.parent.length;
    this.parent.push(id);
    this.sizes.push(size);
    this.why.push(frozen);
    return id;
  }

  find(a: number): number {
    let r = a;
    while (this.parent[r] !== r) r = this.parent[r]!;
    while (this.parent[a] !== r) {
      const next = this.parent[a]!;
      this.parent[a] = r;
      a = next;
    }
    return r;
  }

  size(a: number): number {
    return this.sizes[a]!;
  }

  frozen(a: number): string | null {
    return this.why[this.find(a)]!;
  }

  freeze(a: number, why: string): void {
    const r = this.find(a);
    if (this.why[r] === null) this.why[r] = why;
  }

  union(a: number, b: number, why: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    if (this.sizes[ra] !== this.sizes[rb]) {
      this.freeze(ra, why);
      this.freeze(rb, why);
      return;
    }
    this.parent[rb] = ra;
    if (this.why[ra] === null) this.why[ra] = this.why[rb]!;
  }
}

type Layout = number[];

const UNARY = new Set([
  'relu',
  'leaky_relu',
  'sigmoid',
  'tanh',
  'gelu',
  'silu',
  'elu',
  'hardtanh',
  'softplus',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'square',
  'neg',
  'abs',
  'erf',
  'reciprocal',
  'sign',
  'floor',
  'ceil',
  'round',
  'dropout',
  'contiguous',
  'clone',
  'detach',
  'to',
  'pow',
  'clamp',
]);
const ELEMENTWISE = new Set(['add', 'sub', 'mul', 'div', 'rsub', 'maximum', 'minimum', 'where', 'masked_fill']);
const SPATIAL = /^(upsample_\w+|max_pool[123]d|avg_pool[123]d|adaptive_avg_pool[123]d|adaptive_max_pool[123]d)$/;
const REDUCE = new Set(['mean', 'sum', 'amax', 'amin']);

/** 'aten::add_.Tensor' -> 'add': the op without namespace, overload and in-place mark. */
function baseName(op: string): string {
  const name = op.replace(/^aten::/, '').replace(/\..*$/, '');
  return name.endsWith('_') ? name.slice(0, -1) : name;
}

const where = (n: TracedNode): string => `${n.op} in module '${n.scope || '<root>'}'`;

export function analyzeChannels(g: TracedGraph): ChannelAnalysis {
  const atoms = new Atoms();
  const layouts = new Map<number, Layout | null>();
  const uses = new Map<string, AxisUse>();
  /** Parameters some op reads in a way the analysis does not follow. */
  const foreign = new Set<string>();
  const weightAtoms = new Map<string, number>();

  const paramName = (v: number): string | null => {
    const s = g.values[v]!.source;
    return s.kind === 'param' ? s.name : null;
  };
  const shapeOf = (v: number): number[] => g.values[v]!.shape;
  const sizeOf = (l: Layout): number => l.reduce((a, x) => a + atoms.size(x), 0);
  const freeze = (l: Layout | null, why: string): void => l?.forEach((a) => atoms.freeze(a, why));

  function layoutOf(v: number): Layout | null {
    const known = layouts.get(v);
    if (known !== undefined) return known;
    const val = g.values[v]!;
    const s = val.source;
    const why =
      s.kind === 'input'
        ? 'a network input'
        : s.kind === 'param'
          ? `parameter ${s.name} is read as data`
          : s.kind === 'const'
            ? 'a constant made without the input'
            : 'made by an op the analysis does not follow';
    const l = val.shape.length >= 2 ? [atoms.make(val.shape[1]!, why)] : null;
    layouts.set(v, l);
    return l;
  }

  function unify(a: Layout, b: Layout, why: string): void {
    if (a.length === b.length && a.every((x, i) => atoms.size(x) === atoms.size(b[i]!))) a.forEach((x, i) => atoms.union(x, b[i]!, why));
    else {
      freeze(a, why);
      freeze(b, why);
    }
  }

  function addUse(name: string, axis: number, layout: Layout | null, role: AxisUse['role'], n: TracedNode): void {
    const size = g.params.find((p) => p.name === name)!.tensor.shape[axis];
    if (!layout || sizeOf(layout) !== size) {
      freeze(layout, `${name} axis ${axis} does not match the channels ${where(n)} reads`);
      foreign.add(name);
      return;
    }
    const key = `${name}:${axis}`;
    const known = uses.get(key);
    if (known) unify(known.layout, layout, `${name} is read with two channel layouts`);
    else uses.set(key, { name, axis, layout, role });
  }

  /** Outputs of n get new atoms, frozen. */
  function fresh(n: TracedNode, why: string): void {
    for (const o of n.outputs) {
      const s = shapeOf(o);
      layouts.set(o, s.length >= 2 ? [atoms.make(s[1]!, why)] : null);
    }
  }

  /** An op that may mix channels: its inputs' groups are frozen, its outputs are new frozen atoms. */
  function opaque(n: TracedNode): void {
    const why = `flows into ${where(n)}, which may mix channels`;
    for (const v of torch.nodeInputs(n)) {
      const p = paramName(v);
      if (p) foreign.add(p);
      else freeze(layoutOf(v), why);
    }
    fresh(n, `made by ${where(n)}`);
  }

  function pass(n: TracedNode, x: number): void {
    layouts.set(n.outputs[0]!, layoutOf(x));
    for (const o of n.outputs.slice(1)) layouts.set(o, shapeOf(o).length >= 2 ? [atoms.make(shapeOf(o)[1]!, `made by ${where(n)}`)] : null);
  }

  function weightAtom(name: string, size: number): number {
    let a = weightAtoms.get(name);
    if (a === undefined) weightAtoms.set(name, (a = atoms.make(size, null)));
    return a;
  }

  /** Elementwise ops with broadcasting: every operand that carries the output's channels joins one layout. */
  function elementwise(n: TracedNode): void {
    const out = n.outputs[0]!;
    const r = shapeOf(out).length;
    if (r < 2) return fresh(n, `made by ${where(n)}`);
    const carriers: Layout[] = [];
    const paramCarriers: { name: string; axis: number }[] = [];
    for (const v of torch.nodeInputs(n)) {
      const s = shapeOf(v);
      // The operand's axis that lines up with the output's channel axis, right-aligned.
      const ci = 1 - (r - s.length);
      if (ci < 0 || s[ci] === 1) continue;
      const p = paramName(v);
      if (p) paramCarriers.push({ name: p, axis: ci });
      else if (ci === 1) carriers.push(layoutOf(v)!);
      else return opaque(n);
    }
    if (carriers.length === 0) return opaque(n);
    const [first, ...rest] = carriers;
    for (const l of rest) unify(first!, l, `${where(n)} joins channels laid out differently`);
    for (const p of paramCarriers) addUse(p.name, p.axis, first!, 'channel', n);
    layouts.set(out, first!);
  }

  for (const n of g.nodes) {
    const arg = (i: number) => n.args[i];
    const t = (i: number): number | null => {
      const a = arg(i);
      return a?.kind === 'tensor' ? a.value : null;
    };
    const num = (i: number): number | null => {
      const a = arg(i);
      return a?.kind === 'scalar' && typeof a.value === 'number' ? a.value : null;
    };
    const ints = (i: number): number[] | null => {
      const a = arg(i);
      if (a?.kind === 'list') return a.value.map(Number);
      return a?.kind === 'scalar' && typeof a.value === 'number' ? [a.value] : null;
    };
    const x = t(0);
    const rank = x === null ? 0 : shapeOf(x).length;
    const axis = (d: number): number => (d < 0 ? d + rank : d);
    const base = baseName(n.op);

    if (x === null) {
      if (base === 'cat' && arg(0)?.kind === 'tensors') {
        const vs = (arg(0) as { values: (number | null)[] }).values;
        const ls = vs.map((v) => (v === null ? null : layoutOf(v)));
        const r = shapeOf(n.outputs[0]!).length;
        const d = num(1) ?? 0;
        if (ls.some((l) => l === null) || r < 2) opaque(n);
        else if ((d < 0 ? d + r : d) === 1) layouts.set(n.outputs[0]!, (ls as Layout[]).flat());
        else {
          for (const l of ls.slice(1)) unify(ls[0]!, l!, `${where(n)} joins channels laid out differently`);
          layouts.set(n.outputs[0]!, ls[0]!);
        }
      } else opaque(n);
      continue;
    }

    if (/^conv[123]d$/.test(base) || /^conv_transpose[123]d$/.test(base)) {
      const transposed = base.startsWith('conv_transpose');
      const w = t(1);
      const b = t(2);
      const wName = w === null ? null : paramName(w);
      const bName = b === null ? null : paramName(b);
      if (!wName || (num(6) ?? 1) !== 1 || (b !== null && !bName)) {
        opaque(n);
        continue;
      }
      const ws = shapeOf(w!);
      const [outAxis, inAxis] = transposed ? [1, 0] : [0, 1];
      const out = weightAtom(wName, ws[outAxis]!);
      addUse(wName, outAxis, [out], 'out', n);
      if (bName) addUse(bName, 0, [out], 'channel', n);
      addUse(wName, inAxis, layoutOf(x), 'in', n);
      layouts.set(n.outputs[0]!, [out]);
    } else if (base === 'batch_norm' || base === 'instance_norm') {
      for (const i of [1, 2, 3, 4]) {
        const v = t(i);
        if (v === null) continue;
        const p = paramName(v);
        if (p) addUse(p, 0, layoutOf(x), 'channel', n);
        else freeze(layoutOf(x), `${where(n)} reads computed per-channel values`);
      }
      pass(n, x);
    } else if (base === 'group_norm') {
      // Its group count is part of the module: fewer channels would no longer divide into it.
      freeze(layoutOf(x), `${where(n)} normalises a fixed number of channel groups`);
      pass(n, x);
    } else if (UNARY.has(base) || (ELEMENTWISE.has(base) && torch.nodeInputs(n).length === 1)) {
      pass(n, x);
    } else if (ELEMENTWISE.has(base)) {
      elementwise(n);
    } else if (SPATIAL.test(base)) {
      pass(n, x);
    } else if (base === 'pad' || base === 'constant_pad_nd') {
      const pads = ints(1) ?? [];
      if (pads.length <= 2 * (rank - 2)) pass(n, x);
      else opaque(n);
    } else if (base === 'flip' || base === 'roll') {
      const dims = (ints(base === 'flip' ? 1 : 2) ?? []).map(axis);
      if (dims.length > 0 && !dims.includes(1)) pass(n, x);
      else opaque(n);
    } else if (base === 'slice' || base === 'narrow') {
      if (axis(num(1) ?? 0) >= 2) pass(n, x);
      else opaque(n);
    } else if (REDUCE.has(base)) {
      const dims = (ints(1) ?? []).map(axis);
      const keep = arg(2)?.kind === 'scalar' && (arg(2) as { value: unknown }).value === true;
      if (keep && dims.length > 0 && dims.every((d) => d >= 2)) pass(n, x);
      else opaque(n);
    } else opaque(n);
  }

  for (const o of g.outputs) freeze(layoutOf(o), 'a network output');
  for (const u of uses.values()) if (foreign.has(u.name)) freeze(u.layout, `${u.name} is also read by an op that may mix channels`);

  const groups = new Map<number, ChannelGroup>();
  for (const u of uses.values())
    for (const a of u.layout) {
      const r = atoms.find(a);
      let gr = groups.get(r);
      if (!gr) groups.set(r, (gr = { id: r, size: atoms.size(r), frozen: atoms.frozen(r), producers: [] }));
      if (u.role === 'out' && !gr.producers.includes(u.name)) gr.producers.push(u.name);
    }
  return {
    uses: [...uses.values()],
    groups: [...groups.values()].sort((a, b) => a.id - b.id),
    groupOf: (a) => atoms.find(a),
    atomSize: (a) => atoms.size(a),
  };
}

/** A convolution, transposed convolution or linear layer with a parameter weight; head: it makes a network output with no weighted layer after it. */
export interface WeightedLayer {
  name: string;
  op: string;
  scope: string | null;
  head: boolean;
}

const WEIGHTED = /^aten::(conv[123]d|conv_transpose[123]d(\.input)?|linear)$/;

/** The weighted layers of a traced forward, in call order (each weight once). */
export function weightedLayers(g: TracedGraph): WeightedLayer[] {
  const producer = new Map<number, TracedNode>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  // Walk back from every output; the first weighted layer on each path is a head.
  const heads = new Set<number>();
  const seen = new Set<number>();
  const stack = [...g.outputs];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const n = producer.get(v);
    if (!n) continue;
    if (WEIGHTED.test(n.op)) heads.add(n.index);
    else stack.push(...torch.nodeInputs(n));
  }
  const out = new Map<string, WeightedLayer>();
  for (const n of g.nodes) {
    if (!WEIGHTED.test(n.op)) continue;
    const a = n.args[1];
    const s = a?.kind === 'tensor' ? g.values[a.value]!.source : null;
    if (s?.kind !== 'param') continue;
    const known = out.get(s.name);
    if (known) known.head ||= heads.has(n.index);
    else out.set(s.name, { name: s.name, op: n.op, scope: n.scope, head: heads.has(n.index) });
  }
  return [...out.values()];
}
