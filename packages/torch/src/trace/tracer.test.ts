/**
 * The tracer on small modules: the recorded op sequence, where each argument
 * comes from (input, named parameter, constant, earlier node), module scopes,
 * folding of parameter-only and constant-only work, in-place ops, and the
 * errors for forwards whose control flow depends on the data.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../index.ts';
import type { Tensor } from '../index.ts';
import { nodeInputs, opSequence, type TracedGraph } from './graph.ts';

const nn = torch.nn;
torch.manualSeed(7);

const sourceOf = (g: TracedGraph, id: number): string => {
  const s = g.values[id]!.source;
  return s.kind === 'param' ? `param:${s.name}` : s.kind === 'node' ? `node:${s.node}.${s.output}` : s.kind === 'input' ? `input:${s.index}` : 'const';
};

test('conv -> batch norm (eval) -> leaky relu -> dropout (eval): ops, parameter names, scopes, shapes; eval dropout hands back its input and adds no node', () => {
  const net = new nn.Sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.BatchNorm(4), new nn.LeakyReLU(0.1), new nn.Dropout(0.5)).eval();
  const x = torch.randn([2, 1, 8, 8]);
  const { graph, outputs } = torch.trace(net, [x]);
  assert.deepEqual(opSequence(graph), ['aten::conv2d', 'aten::batch_norm', 'aten::leaky_relu']);
  const [conv, bn, act] = graph.nodes;
  assert.deepEqual(
    nodeInputs(conv!).map((v) => sourceOf(graph, v)),
    ['input:0', 'param:0.weight', 'param:0.bias'],
  );
  assert.deepEqual(
    nodeInputs(bn!).map((v) => sourceOf(graph, v)),
    ['node:0.0', 'param:1.weight', 'param:1.bias', 'param:1.running_mean', 'param:1.running_var'],
  );
  assert.deepEqual(conv!.args.slice(3), [
    { kind: 'scalar', value: 1 },
    { kind: 'scalar', value: 1 },
    { kind: 'scalar', value: 1 },
    { kind: 'scalar', value: 1 },
  ]);
  assert.deepEqual(bn!.args[5], { kind: 'scalar', value: false }, 'eval mode: running statistics');
  assert.deepEqual(act!.args[1], { kind: 'scalar', value: 0.1 });
  assert.deepEqual(
    graph.nodes.map((n) => n.scope),
    ['0', '1', '2'],
  );
  assert.deepEqual(graph.values[graph.outputs[0]!]!.shape, [2, 4, 8, 8]);
  assert.equal(graph.outputs[0], act!.outputs[0]);
  assert.deepEqual(
    graph.params.map((p) => p.name),
    [...net.stateDict().keys()],
  );
  assert.equal(graph.constants.length, 0);
  // The traced forward is the real one: its output equals a plain forward.
  const plain = torch.noGrad(() => net.forward(x));
  assert.ok(plain.equal(outputs[0]!));
  assert.equal(outputs[0]!.requiresGrad, false, 'traced without gradients');
  torch.dispose([x, plain, outputs]);
  net.dispose();
});

test('multi-head attention: weight slices are folded into constants, the rest are nodes on the input', () => {
  const mha = new nn.MultiheadAttention(8, 2).eval();
  const x = torch.randn([1, 5, 8]);
  const { graph, outputs } = torch.trace(mha, [x], (q) => mha.forward(q).output);
  // chunk() of in_proj_weight/in_proj_bias reads no input: not a node.
  assert.ok(!opSequence(graph).includes('aten::chunk'));
  assert.deepEqual(opSequence(graph).slice(0, 3), ['aten::linear', 'aten::reshape', 'aten::transpose.int']);
  assert.equal(opSequence(graph).filter((o) => o === 'aten::linear').length, 4);
  assert.ok(opSequence(graph).includes('aten::softmax.int'));
  // The three projections read constants (the chunks) of the right shapes; out_proj reads its parameters.
  const linears = graph.nodes.filter((n) => n.op === 'aten::linear');
  assert.deepEqual(
    linears.slice(0, 3).map((n) =>
      nodeInputs(n)
        .slice(1)
        .map((v) => `${sourceOf(graph, v)}[${graph.values[v]!.shape}]`),
    ),
    [
      ['const[8,8]', 'const[8]'],
      ['const[8,8]', 'const[8]'],
      ['const[8,8]', 'const[8]'],
    ],
  );
  assert.deepEqual(
    nodeInputs(linears[3]!)
      .slice(1)
      .map((v) => sourceOf(graph, v)),
    ['param:out_proj.weight', 'param:out_proj.bias'],
  );
  // The folded constants hold the actual slices.
  const wq = graph.constants.find((c) => c.value === nodeInputs(linears[0]!)[1])!;
  const ref = torch.tidy(() => mha.inProjWeight.slice(0, 0, 8).contiguous().toArray());
  assert.deepEqual(Array.from(wq.data as Float32Array), ref);
  assert.deepEqual(graph.values[graph.outputs[0]!]!.shape, [1, 5, 8]);
  assert.ok(graph.nodes.every((n) => n.scope === '' || n.scope === 'out_proj'));
  torch.dispose([x, outputs]);
  mha.dispose();
});

class MaskedAdd extends nn.UnaryModule {
  forward(x: Tensor): Tensor {
    // A constant built and edited in place before the input reads it, then an in-place op on an activation.
    const mask = torch.zeros(x.shape.slice(1));
    mask.slice(0, 0, 1).fill_(3);
    const y = x.mul(2);
    y.add_(mask);
    return y.relu();
  }
}

test('constants are copied as the input-dependent op sees them; in-place ops on activations become nodes', () => {
  const m = new MaskedAdd();
  const x = torch.randn([1, 2, 3]);
  const { graph, outputs } = torch.trace(m, [x]);
  assert.deepEqual(opSequence(graph), ['aten::mul.Scalar', 'aten::add_.Tensor', 'aten::relu']);
  const add = graph.nodes[1]!;
  assert.deepEqual(
    nodeInputs(add).map((v) => sourceOf(graph, v)),
    ['node:0.0', 'const'],
  );
  assert.deepEqual(Array.from(graph.constants[0]!.data as Float32Array), [3, 3, 3, 0, 0, 0]);
  // The in-place result is a new value; relu reads it, not the pre-add one.
  assert.deepEqual(nodeInputs(graph.nodes[2]!), add.outputs);
  assert.notEqual(add.outputs[0], graph.nodes[0]!.outputs[0]);
  torch.dispose([x, outputs]);
});

class ReadsData extends nn.UnaryModule {
  constructor(readonly how: 'item' | 'array') {
    super();
  }
  forward(x: Tensor): Tensor {
    const v = this.how === 'item' ? x.max().item() : x.toArray()[0]!;
    return v > 0 ? x.relu() : x.neg();
  }
}

test('a forward whose control flow reads the data is refused with the op and module named', () => {
  const net = new nn.Sequential(new nn.ReLU(), new ReadsData('item'));
  const x = torch.randn([1, 4]);
  assert.throws(
    () => torch.trace(net, [x]),
    (e: unknown) => e instanceof torch.TraceError && e.op === 'aten::item' && e.scope === '1' && /module '1'/.test(e.message),
  );
  assert.throws(
    () => torch.trace(new ReadsData('array'), [x]),
    (e: unknown) => e instanceof torch.TraceError && /reads input-dependent values/.test(e.message),
  );
  // The observer is gone after a failed trace: ops and reads work as usual.
  assert.equal(torch.tidy(() => x.relu().toArray()).length, 4);
  x.dispose();
});

test('contiguous() on a contiguous activation adds no node; scopes are restored after tracing', () => {
  const net = new nn.Sequential(new nn.Linear(4, 3));
  const before = Object.prototype.hasOwnProperty.call(net.layers[0]!, 'forward');
  const x = torch.randn([2, 4]);
  const { graph, outputs } = torch.trace(net, [x], (a) => net.forward(a).contiguous());
  assert.deepEqual(opSequence(graph), ['aten::linear']);
  assert.equal(Object.prototype.hasOwnProperty.call(net.layers[0]!, 'forward'), before);
  torch.dispose([x, outputs]);
  net.dispose();
});
