/**
 * traceDynamic: integers that follow the batch and spatial sizes become
 * expressions (k * prod(size^e), k rational), and axes whose doubling
 * changes a constant or the op sequence stay fixed with a reason.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../index.ts';
import type { Tensor } from '../index.ts';
import type { DynamicAxis, SymInt } from './dynamic.ts';

const nn = torch.nn;
const AXES: DynamicAxis[] = [
  { input: 0, axis: 0, name: 'batch' },
  { input: 0, axis: 2, name: 'h' },
  { input: 0, axis: 3, name: 'w' },
];
const brief = (s: SymInt): string => `${s.num}/${s.den}:${s.exps.join('')}`;

/** Tokens over the pooled grid, as a transformer stage does: reshapes that depend on N, H*W/4 and C. */
class PooledTokens extends nn.UnaryModule {
  proj = this.module('proj', new nn.Linear(2, 2));
  forward(x: Tensor): Tensor {
    const p = torch.F.avgPool(x, 2);
    const [n, c, h, w] = p.shape as [number, number, number, number];
    const tokens = p.reshape([n, c, h * w]).transpose(1, 2);
    return this.proj.forward(tokens).transpose(1, 2).reshape([n, c, h, w]);
  }
}

/** Adds a position code built for the exact size: the spatial axes cannot vary. */
class SizedPositions extends nn.UnaryModule {
  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape as [number, number, number, number];
    return x.add(torch.arange(0, h * w, 1, { dtype: 'float32' }).reshape([1, 1, h, w]));
  }
}

test('reshape targets follow batch and spatial sizes as expressions (N, C, H*W/4, H/2, W/2)', () => {
  const net = new PooledTokens().eval();
  const x = torch.randn([1, 2, 8, 12]);
  const dt = torch.traceDynamic(net, [x], AXES);
  assert.deepEqual(
    dt.axes.map((a) => a.name),
    ['batch', 'h', 'w'],
  );
  assert.deepEqual(dt.fixed, []);
  const [flat, back] = dt.graph.nodes.filter((n) => n.op === 'aten::reshape');
  const list = (node: number) =>
    [0, 1, 2, 3].slice(0, (dt.graph.nodes[node]!.args[1] as { value: number[] }).value.length).map((j) => brief(dt.arg(node, 1, j)));
  // [n, c, h*w] = [N, 2, (H/2)(W/2)] and [n, c, h, w] = [N, 2, H/2, W/2]
  assert.deepEqual(list(flat!.index), ['1/1:100', '2/1:000', '1/4:011']);
  assert.deepEqual(list(back!.index), ['1/1:100', '2/1:000', '1/2:010', '1/2:001']);
  assert.deepEqual(dt.arg(flat!.index, 1, 2).base, 24);
  // The output's shape as expressions.
  assert.deepEqual(dt.shape(dt.graph.outputs[0]!).map(brief), ['1/1:100', '2/1:000', '1/2:010', '1/2:001']);
  // Fixing an axis folds it into the constant factor.
  dt.fix('w', 'test');
  assert.deepEqual(brief(dt.arg(flat!.index, 1, 2)), '3/1:01'); // (H/2) * (12/2)
  torch.dispose([x, dt.outputs]);
  net.dispose();
});

test('a constant made for the exact size keeps the spatial axes fixed, with the reason; the batch stays dynamic', () => {
  const net = new SizedPositions();
  const x = torch.randn([2, 1, 4, 6]);
  const dt = torch.traceDynamic(net, [x], AXES);
  assert.deepEqual(
    dt.axes.map((a) => a.name),
    ['batch'],
  );
  assert.deepEqual(
    dt.fixed.map((f) => f.axis.name),
    ['h', 'w'],
  );
  assert.match(dt.fixed[0]!.reason, /a constant read in module .* changes with the size/);
  torch.dispose([x, dt.outputs]);
});
