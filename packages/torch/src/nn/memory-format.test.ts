/**
 * Channels-last layout: the tensor conversion, its strides, a module's weights
 * converted in place (same tensors, same values, gradients still reaching
 * them), and convolutions giving the same numbers in either layout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../index.ts';
import { randnT } from '../testing/inputs.ts';

test('contiguous(channels_last): NHWC strides, same values; channels_last_3d for 5D', () => {
  torch.tidy(() => {
    const x = randnT([2, 3, 4, 5], 1);
    const cl = x.contiguous('channels_last');
    assert.deepEqual(cl.shape, [2, 3, 4, 5]);
    assert.deepEqual(cl.strides(), [60, 1, 15, 3]);
    assert.ok(cl.isContiguous('channels_last') && !cl.isContiguous());
    assert.ok(cl.equal(x));
    assert.equal(cl.contiguous('channels_last'), cl, 'already channels last: the same tensor');
    const v = randnT([1, 2, 3, 4, 5], 2).contiguous('channels_last_3d');
    assert.deepEqual(v.strides(), [120, 1, 40, 10, 2]);
  });
});

test('Module.toMemoryFormat re-lays conv weights in place; outputs and gradients equal the contiguous ones', () => {
  torch.manualSeed(3);
  const a = new torch.nn.Conv2d(3, 4, 3, { padding: 1 });
  torch.manualSeed(3);
  const b = new torch.nn.Conv2d(3, 4, 3, { padding: 1 });
  const weight = b.parameters()[0]!;
  b.toMemoryFormat('channels_last');
  assert.equal(b.parameters()[0], weight, 'the same parameter tensor');
  assert.ok(weight.isContiguous('channels_last') && weight.requiresGrad && weight.isLeaf);
  torch.tidy(() => {
    const x = randnT([2, 3, 8, 8], 4);
    const ya = a.forward(x);
    const yb = b.forward(x.contiguous('channels_last'));
    assert.ok(yb.isContiguous('channels_last'), 'channels-last in, channels-last out');
    assert.ok(ya.allclose(yb, 1e-5, 1e-5));
    ya.square().sum().backward();
    yb.square().sum().backward();
    assert.ok(a.parameters()[0]!.grad!.allclose(weight.grad!, 1e-4, 1e-4));
  });
  a.dispose();
  b.dispose();
});
