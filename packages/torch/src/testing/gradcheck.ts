/**
 * Numerical gradient check: autograd's backward against central differences,
 * in float64. The output(s) are reduced to a scalar with fixed random weights
 * (L = sum(out * v)) so that every output element contributes to the check.
 * Only inputs with requiresGrad are checked; the others are held constant
 * (integer targets, indices).
 */
import assert from 'node:assert/strict';
import { noGrad } from '../autograd.ts';
import { tensor } from '../creation.ts';
import { tidy } from '../scope.ts';
import { Tensor } from '../tensor.ts';
import { randnData } from './inputs.ts';

export interface GradcheckOptions {
  /** Finite-difference step. */
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Seed of the output weights v. */
  seed?: number;
}

type Out = Tensor | Tensor[];

function outputs(o: Out): Tensor[] {
  return Array.isArray(o) ? o : [o];
}

/**
 * Asserts that the gradients autograd computes for fn at `inputs` match
 * central differences. Inputs must be float64; fn must be deterministic.
 * Returns the largest absolute difference found.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Out, inputs: Tensor[], o: GradcheckOptions = {}): number {
  const eps = o.eps ?? 1e-6;
  const atol = o.atol ?? 1e-6;
  const rtol = o.rtol ?? 1e-4;
  const checked = inputs.map((t) => t.requiresGrad);
  assert.ok(checked.some(Boolean), 'gradcheck: no input requires grad');
  for (const [i, t] of inputs.entries()) {
    if (checked[i]) assert.equal(t.dtype, 'float64', `gradcheck: input ${i} must be float64, is ${t.dtype}`);
  }
  return tidy(() => {
    const values = inputs.map((t, i) => (checked[i] ? (t.toTypedArray() as Float64Array) : null));
    // Weights for each output, fixed by the first evaluation's shapes.
    let weights: Tensor[] = [];
    const scalarLoss = (outs: Tensor[]): Tensor => {
      let total: Tensor | null = null;
      outs.forEach((y, k) => {
        const term = y.mul(weights[k]!).sum();
        total = total ? total.add(term) : term;
      });
      return total!;
    };

    // Analytic gradients through libtorch's autograd, with fresh leaf copies.
    const leaves = inputs.map((t, i) => (checked[i] ? t.detach().clone().requiresGrad_(true) : t));
    const outs = outputs(fn(...leaves));
    weights = outs.map((y, k) => tensor(Float64Array.from(randnData(y.numel, (o.seed ?? 1) + k)), y.shape, { dtype: y.dtype }));
    scalarLoss(outs).backward();
    const analytic = leaves.map((l, i) => {
      if (!checked[i]) return null;
      const g = l.grad;
      assert.ok(g, `gradcheck: input ${i} received no gradient`);
      return g.toTypedArray() as Float64Array;
    });

    // Numerical: perturb one element at a time, evaluate without recording.
    const evalAt = (i: number, j: number, delta: number): number =>
      noGrad(() =>
        tidy(() => {
          const xs = inputs.map((t, k) => {
            if (k !== i) return t.detach();
            const v = Float64Array.from(values[k]!);
            v[j]! += delta;
            return tensor(v, t.shape, { dtype: 'float64' });
          });
          return scalarLoss(outputs(fn(...xs))).item();
        }),
      );
    let worst = 0;
    let anyNonZero = false;
    for (let i = 0; i < inputs.length; i++) {
      if (!checked[i]) continue;
      const n = values[i]!.length;
      for (let j = 0; j < n; j++) {
        const numeric = (evalAt(i, j, eps) - evalAt(i, j, -eps)) / (2 * eps);
        const a = analytic[i]![j]!;
        if (numeric !== 0) anyNonZero = true;
        const diff = Math.abs(a - numeric);
        worst = Math.max(worst, diff);
        if (!(diff <= atol + rtol * Math.abs(numeric))) {
          assert.fail(`gradcheck: input ${i} element ${j}: autograd ${a}, numerical ${numeric} (|diff| ${diff})`);
        }
      }
    }
    assert.ok(anyNonZero, 'gradcheck: every numerical gradient is zero; the check would prove nothing');
    return worst;
  });
}
