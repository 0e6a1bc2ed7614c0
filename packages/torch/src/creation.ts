/** Tensor factories and functions of several tensors (cat, stack, where). */
import { native } from './native.ts';
import { checkDevice } from './runtime.ts';
import { DTYPE_CODE, dtypeOfArray, type AnyTypedArray, type DType } from './dtype.ts';
import { Tensor, call, callT, type FactoryOptions } from './tensor.ts';

function opts(o: FactoryOptions | undefined, fallback?: DType): [number | null, null, string | null, null] {
  if (o?.device) checkDevice(o.device);
  const dtype = o?.dtype ?? fallback;
  return [dtype === undefined ? null : DTYPE_CODE[dtype], null, o?.device ?? null, null];
}

function finish(t: Tensor, o: FactoryOptions | undefined): Tensor {
  if (o?.requiresGrad) t.requiresGrad_(true);
  return t;
}

function checkShape(shape: number[]): number[] {
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new RangeError(`invalid shape [${shape.join(', ')}]: sizes must be non-negative integers`);
  }
  return shape;
}

/**
 * A tensor holding a copy of `data`. A typed array keeps its dtype unless
 * `dtype` says otherwise; a number array becomes float32 by default.
 */
export function tensor(data: AnyTypedArray | number[], shape?: number[], o?: FactoryOptions): Tensor {
  const s = checkShape(shape ?? [data.length]);
  if (Array.isArray(data)) {
    const d = o?.dtype ?? 'float32';
    const typed =
      d === 'float64'
        ? Float64Array.from(data)
        : d === 'int64'
          ? BigInt64Array.from(data, (v) => BigInt(v))
          : d === 'int32'
            ? Int32Array.from(data)
            : d === 'int16'
              ? Int16Array.from(data)
              : d === 'int8'
                ? Int8Array.from(data)
                : d === 'uint8' || d === 'bool'
                  ? Uint8Array.from(data)
                  : Float32Array.from(data);
    // The typed-array path casts (bool, float16) and honours the device.
    return tensor(typed, s, { ...o, dtype: d });
  }
  const arr: AnyTypedArray = data;
  const own = dtypeOfArray(arr);
  let t = new Tensor(native.fromBuffer(arr, s, DTYPE_CODE[own]));
  if (o?.dtype && o.dtype !== own) {
    const c = t.to(o.dtype);
    t.dispose();
    t = c;
  }
  if (o?.device && o.device !== 'cpu') {
    const c = t.toDevice(o.device);
    t.dispose();
    t = c;
  }
  return finish(t, o);
}

export function scalarTensor(value: number, o?: FactoryOptions): Tensor {
  return finish(callT('aten::scalar_tensor', [value, ...opts(o, 'float32')]), o);
}

export function zeros(shape: number[], o?: FactoryOptions): Tensor {
  return finish(callT('aten::zeros', [checkShape(shape), ...opts(o, 'float32')]), o);
}

export function ones(shape: number[], o?: FactoryOptions): Tensor {
  return finish(callT('aten::ones', [checkShape(shape), ...opts(o, 'float32')]), o);
}

export function empty(shape: number[], o?: FactoryOptions): Tensor {
  return finish(callT('aten::empty.memory_format', [checkShape(shape), ...opts(o, 'float32'), null]), o);
}

export function full(shape: number[], value: number, o?: FactoryOptions): Tensor {
  return finish(callT('aten::full', [checkShape(shape), value, ...opts(o, 'float32')]), o);
}

export function zerosLike(t: Tensor, o?: FactoryOptions): Tensor {
  return finish(callT('aten::zeros_like', [t, ...opts(o), null]), o);
}

export function onesLike(t: Tensor, o?: FactoryOptions): Tensor {
  return finish(callT('aten::ones_like', [t, ...opts(o), null]), o);
}

export function fullLike(t: Tensor, value: number, o?: FactoryOptions): Tensor {
  return finish(callT('aten::full_like', [t, value, ...opts(o), null]), o);
}

/** [start, end) with step; integer arguments give int64 unless dtype says otherwise. */
export function arange(start: number, end?: number, step = 1, o?: FactoryOptions): Tensor {
  const [a, b] = end === undefined ? [0, start] : [start, end];
  return finish(callT('aten::arange.start_step', [a, b, step, ...opts(o)]), o);
}

export function linspace(start: number, end: number, steps: number, o?: FactoryOptions): Tensor {
  return finish(callT('aten::linspace', [start, end, steps, ...opts(o, 'float32')]), o);
}

export function eye(n: number, o?: FactoryOptions): Tensor {
  return finish(callT('aten::eye', [n, ...opts(o, 'float32')]), o);
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return callT('aten::cat', [tensors, dim]);
}

export function stack(tensors: Tensor[], dim = 0): Tensor {
  return callT('aten::stack', [tensors, dim]);
}

export function where(condition: Tensor, a: Tensor, b: Tensor): Tensor {
  return callT('aten::where.self', [condition, a, b]);
}

/** One-hot encoding of an integer tensor: [...] -> [..., numClasses] int64. */
export function oneHot(labels: Tensor, numClasses = -1): Tensor {
  return callT('aten::one_hot', [labels, numClasses]);
}

export function einsum(equation: string, operands: Tensor[]): Tensor {
  return callT('aten::einsum', [equation, operands, null]);
}

// ---- random -------------------------------------------------------------------

/** Seeds libtorch's default generator (weights init, dropout, rand without generator). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

export function rand(shape: number[], o?: FactoryOptions): Tensor {
  return finish(callT('aten::rand.generator', [checkShape(shape), o?.generator ?? null, ...opts(o, 'float32')]), o);
}

export function randn(shape: number[], o?: FactoryOptions): Tensor {
  return finish(callT('aten::randn.generator', [checkShape(shape), o?.generator ?? null, ...opts(o, 'float32')]), o);
}

/** Integers uniformly in [low, high); int64 by default. */
export function randint(low: number, high: number, shape: number[], o?: FactoryOptions): Tensor {
  return finish(callT('aten::randint.low_generator', [low, high, checkShape(shape), o?.generator ?? null, ...opts(o, 'int64')]), o);
}

/** 1 with probability p (a number, or a tensor of probabilities), else 0. */
export function bernoulli(pOrProbs: number | Tensor, shape?: number[], o?: FactoryOptions): Tensor {
  if (pOrProbs instanceof Tensor) return callT('aten::bernoulli', [pOrProbs, o?.generator ?? null]);
  const base = empty(shape ?? [1], o);
  const r = callT('aten::bernoulli.p', [base, pOrProbs, o?.generator ?? null]);
  base.dispose();
  return r;
}

/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, o?: FactoryOptions): Tensor {
  return callT('aten::randperm.generator', [n, o?.generator ?? null, ...opts(o, 'int64')]);
}

export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

export { call };

/** The default generator's state (uint8 tensor), for checkpoints that resume exactly. */
export function getRngState(): Tensor {
  return new Tensor(native.generatorState(null));
}

export function setRngState(state: Tensor): void {
  native.setGeneratorState(null, state.handle);
}
