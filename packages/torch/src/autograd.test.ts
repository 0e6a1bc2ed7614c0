/**
 * Autograd plumbing: hooks see and replace gradients, retainGrad on non-leaves,
 * noGrad / enableGrad, detach, accumulation, retained and double-backward
 * graphs, and that gradcheck itself catches a wrong gradient.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from './index.ts';
import { gradcheck } from './testing/gradcheck.ts';
import { randnT } from './testing/inputs.ts';

const f64 = { dtype: 'float64' } as const;
const arr = (t: torch.Tensor) => Array.from(t.toTypedArray() as Float64Array);
function close(a: number[], b: number[], tol = 1e-12): void {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= tol, `element ${i}: ${v} vs ${b[i]}`));
}

test('autograd: registerHook sees the gradient flowing into a non-leaf and into a leaf', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
    const y = x.mul(3);
    const seenY: number[][] = [];
    const seenX: number[][] = [];
    y.registerHook((g) => void seenY.push(arr(g)));
    x.registerHook((g) => void seenX.push(arr(g)));
    y.square().sum().backward(); // d/dy = 2y = 6x ; d/dx = 18x
    close(seenY[0]!, [6, 12, 18]);
    close(seenX[0]!, [18, 36, 54]);
    close(arr(x.grad!), [18, 36, 54]);
  });
});

test('autograd: a hook can replace the gradient, and removing it restores the plain gradient', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, -2], [2], { ...f64, requiresGrad: true });
    const y = x.mul(2);
    const remove = y.registerHook((g) => g.mul(10));
    y.sum().backward();
    close(arr(x.grad!), [20, 20]);
    remove();
    x.grad = null;
    const y2 = x.mul(2);
    y2.sum().backward();
    close(arr(x.grad!), [2, 2]);
    // Replacing on a leaf changes what accumulates into .grad.
    x.grad = null;
    const r = x.registerHook((g) => g.neg());
    x.mul(5).sum().backward();
    close(arr(x.grad!), [-5, -5]);
    r();
  });
});

test('autograd: a hook that throws surfaces as an error and the engine keeps working', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2], [2], { ...f64, requiresGrad: true });
    const y = x.mul(2);
    y.registerHook(() => {
      throw new Error('boom in hook');
    });
    assert.throws(() => y.sum().backward(), /boom in hook/);
    const z = torch.tensor([3], [1], { ...f64, requiresGrad: true });
    z.mul(4).sum().backward();
    close(arr(z.grad!), [4]);
  });
});

test('autograd: retainGrad keeps .grad on a non-leaf; without it a non-leaf has none', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
    const h = x.mul(x); // non-leaf
    const k = x.add(1); // non-leaf, not retained
    assert.equal(h.isLeaf, false);
    assert.equal(x.isLeaf, true);
    h.retainGrad();
    h.mul(k).sum().backward();
    close(arr(h.grad!), [2, 3, 4]); // d/dh (h * k) = k
    assert.equal(k.grad, null);
    close(arr(x.grad!), [1 * 2 * 2 + 1, 2 * 2 * 3 + 4, 2 * 3 * 4 + 9]); // 2x*k + h
  });
});

test('autograd: noGrad disables recording, restores the previous mode even on throw; enableGrad re-enables', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2], [2], { ...f64, requiresGrad: true });
    assert.equal(torch.isGradEnabled(), true);
    const y = torch.noGrad(() => {
      assert.equal(torch.isGradEnabled(), false);
      const inner = torch.enableGrad(() => x.mul(2));
      assert.equal(inner.requiresGrad, true);
      return x.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(torch.isGradEnabled(), true);
    assert.throws(() =>
      torch.noGrad(() => {
        throw new Error('inside');
      }),
    );
    assert.equal(torch.isGradEnabled(), true);
    assert.throws(() => y.sum().backward(), /does not require grad/);
    const z = x.mul(2);
    assert.equal(z.requiresGrad, true);
    assert.match(z.gradFn ?? '', /Mul/);
  });
});

test('autograd: detach shares values but cuts the graph', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    close(arr(d), [1, 2, 3]);
    x.mul(d).sum().backward(); // d treated as a constant: grad = d, not 2x
    close(arr(x.grad!), [1, 2, 3]);
    // detach shares storage with x: an in-place change shows through.
    torch.noGrad(() => x.add_(1));
    close(arr(d), [2, 3, 4]);
  });
});

test('autograd: gradients accumulate across backward calls until reset', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2], [2], { ...f64, requiresGrad: true });
    x.mul(3).sum().backward();
    x.mul(3).sum().backward();
    close(arr(x.grad!), [6, 6]);
    x.grad = null;
    assert.equal(x.grad, null);
    x.mul(3).sum().backward();
    close(arr(x.grad!), [3, 3]);
  });
});

test('autograd: retainGraph allows a second backward; without it libtorch refuses with a JS error', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2], [2], { ...f64, requiresGrad: true });
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    close(arr(x.grad!), [2 * Math.E, 2 * Math.exp(2)], 1e-12);
    const z = x.exp().sum();
    z.backward();
    assert.throws(
      () => z.backward(),
      (e: Error) => e instanceof Error && /backward/i.test(e.message),
    );
  });
});

test('autograd: backward with an explicit gradient for a non-scalar output; implicit gradient needs a scalar', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
    const y = x.square();
    assert.throws(() => y.backward(), /scalar/);
    y.backward(torch.tensor([1, 0.5, -1], [3], f64));
    close(arr(x.grad!), [2, 2, -6]);
  });
});

test('autograd: createGraph gives a differentiable gradient (second derivative)', () => {
  torch.tidy(() => {
    const x = torch.tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
    x.pow(3).sum().backward(undefined, { createGraph: true });
    const g1 = x.grad!;
    close(arr(g1), [3, 12, 27]);
    assert.equal(g1.requiresGrad, true);
    x.grad = null;
    g1.sum().backward();
    close(arr(x.grad!), [6, 12, 18]);
  });
});

test('autograd: requiresGrad_ on a leaf and gradFn names', () => {
  torch.tidy(() => {
    const x = torch.zeros([2], f64);
    assert.equal(x.requiresGrad, false);
    x.requiresGrad_();
    assert.equal(x.requiresGrad, true);
    assert.equal(x.gradFn, null);
    assert.match(x.add(1).gradFn ?? '', /Add/);
  });
});

test('gradcheck: fails on a wrong gradient (a hook that scales it) and passes on the right one', () => {
  torch.tidy(() => {
    const x = randnT([4], 5, { ...f64, requiresGrad: true });
    assert.doesNotThrow(() => gradcheck((t) => t.mul(2).sin(), [x]));
    assert.throws(
      () =>
        gradcheck(
          (t) => {
            const y = t.mul(2);
            if (y.requiresGrad) y.registerHook((g) => g.mul(1.5));
            return y.sin();
          },
          [x],
        ),
      /gradcheck: input 0/,
    );
    // A function whose output ignores the input proves nothing and is refused.
    assert.throws(() => gradcheck((t) => t.mul(0), [x]), /every numerical gradient is zero/);
  });
});
