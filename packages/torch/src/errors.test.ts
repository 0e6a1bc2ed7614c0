/**
 * Failures are JS errors that say what went wrong, and the process keeps
 * working after them: libtorch shape errors name the op and the shapes,
 * disposed tensors are refused, CUDA on a CPU build is explained, wrong
 * argument types are TypeErrors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from './index.ts';
import { call } from './index.ts';
import { randnT } from './testing/inputs.ts';

const F = torch.F;

/** The engine still computes correctly after a failure. */
function stillWorks(): void {
  torch.tidy(() => {
    const a = torch.tensor([1, 2, 3, 4], [2, 2]);
    assert.deepEqual(a.matmul(a).toArray(), [7, 10, 15, 22]);
  });
}

test('errors: a libtorch shape error in matmul names the op and both shapes, and the process survives', () => {
  torch.tidy(() => {
    const a = randnT([2, 3], 1);
    const b = randnT([4, 5], 2);
    assert.throws(
      () => a.matmul(b),
      (e: Error) =>
        e instanceof Error &&
        /aten::matmul/.test(e.message) &&
        e.message.includes('[2,3]') &&
        e.message.includes('[4,5]') &&
        /cannot be multiplied|mat1 and mat2/.test(e.message),
    );
    assert.throws(
      () => a.bmm(b),
      (e: Error) => /aten::bmm/.test(e.message) && e.message.includes('[2,3]'),
    );
  });
  stillWorks();
});

test('errors: a conv with mismatched channels names the op and the shapes', () => {
  torch.tidy(() => {
    const x = randnT([1, 3, 8, 8], 3);
    const w = randnT([4, 2, 3, 3], 4);
    assert.throws(
      () => F.conv(x, w),
      (e: Error) => /aten::conv2d/.test(e.message) && e.message.includes('[1,3,8,8]') && e.message.includes('[4,2,3,3]') && /channels/.test(e.message),
    );
    assert.throws(() => F.conv(randnT([3, 8, 8], 5), w), /conv: expected a 3D, 4D or 5D input|conv1d|aten::conv/);
    assert.throws(() => F.maxPool(randnT([8], 6), 2), /maxPool: expected a 3D, 4D or 5D input/);
    assert.throws(() => F.crossEntropy(randnT([4, 3], 7), torch.tensor([0, 1, 5, 2], [4], { dtype: 'int64' })), /cross_entropy|nll_loss|out of bounds/);
    assert.throws(() => randnT([2, 3], 8).reshape([4, 2]), /aten::reshape.*\[2,3\].*invalid for input of size 6/);
    assert.throws(() => torch.cat([randnT([2, 3], 9), randnT([2, 4], 10)], 0), /aten::cat/);
  });
  stillWorks();
});

test('errors: using a disposed tensor throws a clear error; dispose is idempotent', () => {
  const t = torch.ones([2, 2]);
  t.dispose();
  t.dispose();
  assert.equal(t.disposed, true);
  assert.throws(() => t.add(1), /already disposed/);
  assert.throws(() => t.shape, /disposed/);
  assert.throws(() => t.toArray(), /disposed/);
  assert.throws(() => torch.ones([2, 2]).add(t), /already disposed/);
  assert.equal(String(t), 'Tensor(disposed)');
  stillWorks();
});

test("errors: device 'cuda' on this CPU build gives checkDevice's message from factories and toDevice", () => {
  if (torch.cudaAvailable()) return; // a CUDA build may use the device
  const msg = /device 'cuda(:0)?' requested but this libtorch build has no CUDA support: point LIBTORCH at a CUDA libtorch/;
  assert.throws(() => torch.checkDevice('cuda'), msg);
  assert.doesNotThrow(() => torch.checkDevice('cpu'));
  assert.throws(() => torch.zeros([2], { device: 'cuda' }), msg);
  assert.throws(() => torch.rand([2], { device: 'cuda:0' }), msg);
  assert.throws(() => torch.tensor([1, 2], [2], { device: 'cuda' }), msg);
  assert.throws(() => torch.tensor(new Float32Array(2), [2], { device: 'cuda' }), msg);
  assert.throws(() => torch.ones([2]).toDevice('cuda'), msg);
  assert.throws(() => torch.zeros([2], { device: 'tpu' }), /unknown device 'tpu'/);
  // Straight to the binding, a bad device string is a TypeError, not an abort.
  assert.throws(
    () => call('aten::to.device', [torch.ones([2]), 'tpu', 6, false, false]),
    (e: Error) => e instanceof TypeError && /invalid device 'tpu'/.test(e.message),
  );
  stillWorks();
});

test('errors: wrong argument types give TypeErrors naming the op and the argument', () => {
  torch.tidy(() => {
    const t = torch.ones([2, 3]);
    const isTypeError = (re: RegExp) => (e: Error) => e instanceof TypeError && re.test(e.message);
    assert.throws(() => call('aten::add.Tensor', [t, 'x']), isTypeError(/aten::add\.Tensor.*argument 'other'.*expected a Tensor/));
    assert.throws(() => call('aten::matmul', [t, 3]), isTypeError(/aten::matmul.*expected a Tensor/));
    assert.throws(() => t.sum(1.5), isTypeError(/expected an integer/));
    assert.throws(() => t.reshape('abc' as unknown as number[]), isTypeError(/aten::reshape.*argument 'shape'/));
    assert.throws(() => t.reshape([2, 'x' as unknown as number]), isTypeError(/expected an integer/));
    assert.throws(() => F.conv(randnT([1, 2, 4, 4], 1), 'weight' as unknown as torch.Tensor), isTypeError(/aten::conv2d.*argument 'weight'/));
    assert.throws(() => call('aten::relu', [t, 1, 2]), isTypeError(/aten::relu: 3 arguments given, the op takes 1/));
    assert.throws(() => call('aten::mul.Tensor', [t]), isTypeError(/missing argument 'other'/));
    assert.throws(() => call('aten::layer_norm', [t, [3], null, null, 1e-5, 'yes']), isTypeError(/expected a boolean/));
    assert.throws(() => call('aten::no_such_op', [t]), /unknown operator aten::no_such_op/);
    assert.throws(() => torch.zeros([2, -1]), RangeError);
    assert.throws(() => torch.tensor(new Float32Array(5), [2, 2]), /buffer has 20 bytes but shape \[2,2\] Float needs 16/);
    assert.throws(() => torch.tensor(new Uint16Array(2)), isTypeError(/Uint16Array has no libtorch dtype/));
  });
  stillWorks();
});

test('errors: a failure inside tidy frees the scope and leaves the engine usable', () => {
  const live = torch.liveTensors();
  assert.throws(() =>
    torch.tidy(() => {
      const a = torch.ones([3, 3]);
      const b = a.mul(2);
      b.matmul(torch.ones([4, 4]));
    }),
  );
  assert.equal(torch.liveTensors(), live);
  stillWorks();
});
