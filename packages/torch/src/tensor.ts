/**
 * The Tensor: a JS owner of one libtorch tensor. Every op returns a new Tensor
 * registered with the current tidy() scope; in-place ops (name ending in `_`)
 * return `this`. Shapes are plain number arrays, dims may be negative.
 */
import { native, type NativeGenerator, type NativeTensor } from './native.ts';
import { callNative, observeRead } from './ops.ts';
import { checkDevice } from './runtime.ts';
import { keep, track } from './scope.ts';
import { DTYPE_CODE, dtypeFromCode, typedArrayFrom, type AnyTypedArray, type DType } from './dtype.ts';

export type Scalar = number | boolean;

/**
 * Memory layouts of a 4D / 5D tensor: row-major NC(D)HW, or channels last
 * (N(D)HWC strides, same shape), the layout oneDNN convolutions run in
 * without reordering. c10::MemoryFormat codes.
 */
export type MemoryFormat = 'contiguous' | 'channels_last' | 'channels_last_3d';
const MEMORY_FORMAT_CODE: Record<MemoryFormat, number> = { contiguous: 0, channels_last: 2, channels_last_3d: 3 };
export type TensorOrScalar = Tensor | number;

/** Options every factory takes. */
export interface FactoryOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
  generator?: Generator | null;
}

/** A seeded random number generator, for reproducible augmentation and init. */
export class Generator {
  readonly handle: NativeGenerator;
  constructor(seed: number) {
    this.handle = native.makeGenerator(seed);
  }
  /** The generator's state as a uint8 tensor (for checkpoints). */
  getState(): Tensor {
    return new Tensor(native.generatorState(this.handle));
  }
  setState(state: Tensor): void {
    native.setGeneratorState(this.handle, state.handle);
  }
}

function toNativeArg(a: unknown): unknown {
  if (a instanceof Tensor) return a.handle;
  if (a instanceof Generator) return a.handle;
  if (Array.isArray(a) && a.length > 0 && (a[0] instanceof Tensor || a.some((x) => x instanceof Tensor))) {
    return a.map((x) => (x instanceof Tensor ? x.handle : x));
  }
  return a;
}

function fromNativeResult(r: unknown, args: unknown[]): unknown {
  if (r === null || r === undefined) return r;
  if (Array.isArray(r)) return r.map((x) => fromNativeResult(x, args));
  if (typeof r === 'object') {
    for (const a of args) if (a instanceof Tensor && a.handle === r) return a;
    return new Tensor(r as NativeTensor);
  }
  return r;
}

/** Calls an ATen op with Tensors among its arguments; wraps what comes back. */
export function call(qualified: string, args: unknown[]): unknown {
  const nativeArgs = new Array(args.length);
  for (let i = 0; i < args.length; i++) nativeArgs[i] = toNativeArg(args[i]);
  return fromNativeResult(callNative(qualified, nativeArgs), args);
}

/** call() for ops returning one tensor. */
export function callT(qualified: string, args: unknown[]): Tensor {
  return call(qualified, args) as Tensor;
}

function binary(self: Tensor, other: TensorOrScalar, tensorOp: string, scalarOp: string): Tensor {
  return other instanceof Tensor ? callT(tensorOp, [self, other]) : callT(scalarOp, [self, other]);
}

function noGradSet(self: Tensor, src: Tensor): void {
  const prev = native.setGradEnabled(false);
  try {
    call('aten::set_.source_Tensor', [self, src]);
  } finally {
    native.setGradEnabled(prev);
  }
}

export class Tensor {
  /** Set by keep(): no scope frees this tensor. */
  kept = false;
  private cachedShape: number[] | undefined;

  constructor(readonly handle: NativeTensor) {
    track(this);
  }

  // ---- metadata -------------------------------------------------------------
  get shape(): number[] {
    return (this.cachedShape ??= this.handle.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): DType {
    return dtypeFromCode(this.handle.dtypeCode);
  }
  get numel(): number {
    return this.handle.numel;
  }
  get device(): string {
    return this.handle.device;
  }
  get disposed(): boolean {
    return this.handle.disposed;
  }
  size(dim: number): number {
    const s = this.shape;
    return s[dim < 0 ? s.length + dim : dim]!;
  }
  dispose(): void {
    this.handle.dispose();
  }
  /**
   * Scopes free what they own deterministically; a tensor outside every scope
   * may be forgotten, so V8 is told about its native memory to collect it sooner.
   */
  unscoped(): void {
    this.handle.reportMemory();
  }
  [Symbol.dispose](): void {
    this.handle.dispose();
  }
  /** Exempts this tensor from tidy() scopes; dispose it yourself. */
  keep(): this {
    return keep(this);
  }
  toString(): string {
    return `Tensor(${this.disposed ? 'disposed' : `[${this.shape.join(', ')}], ${this.dtype}`})`;
  }

  // ---- data out ---------------------------------------------------------------
  /** A copy of the values as a typed array (row-major). */
  toTypedArray(): AnyTypedArray {
    observeRead(this.handle);
    return typedArrayFrom(native.toBuffer(this.handle), this.dtype);
  }
  toFloat32Array(): Float32Array {
    if (this.dtype === 'float32') return this.toTypedArray() as Float32Array;
    const t = this.to('float32');
    const out = t.toTypedArray() as Float32Array;
    t.dispose();
    return out;
  }
  /** Zero-copy view of a contiguous tensor's memory; valid while the tensor lives. */
  sharedTypedArray(): AnyTypedArray {
    observeRead(this.handle);
    return typedArrayFrom(native.sharedBuffer(this.handle), this.dtype);
  }
  /** Values as a plain number array (int64 converted to number). */
  toArray(): number[] {
    const a = this.toTypedArray();
    return Array.from(a as ArrayLike<number | bigint>, (v) => Number(v));
  }
  item(): number {
    const v = call('aten::item', [this]);
    return typeof v === 'boolean' ? Number(v) : (v as number);
  }

  // ---- autograd -----------------------------------------------------------------
  get requiresGrad(): boolean {
    return this.handle.requiresGrad;
  }
  requiresGrad_(flag = true): this {
    native.setRequiresGrad(this.handle, flag);
    return this;
  }
  /** The accumulated gradient (a new handle to it), or null. */
  get grad(): Tensor | null {
    const g = native.getGrad(this.handle);
    return g ? new Tensor(g) : null;
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g ? g.handle : null);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  get gradFn(): string | null {
    return native.gradFnName(this.handle);
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient ? gradient.handle : null, opts.retainGraph ?? false, opts.createGraph ?? false);
  }
  /** Keep .grad on a non-leaf tensor after backward (Grad-CAM on activations). */
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  /**
   * Calls fn with the gradient flowing into this tensor during backward; fn may
   * return a replacement. Returns a function that removes the hook.
   */
  registerHook(fn: (grad: Tensor) => Tensor | void): () => void {
    const id = native.registerHook(this.handle, (g) => {
      const grad = new Tensor(g).keep();
      try {
        const r = fn(grad);
        return r ? r.handle : undefined;
      } finally {
        grad.dispose();
      }
    });
    return () => native.removeHook(this.handle, id);
  }
  detach(): Tensor {
    return callT('aten::detach', [this]);
  }

  // ---- conversion ------------------------------------------------------------------
  to(dtype: DType): Tensor {
    return callT('aten::to.dtype', [this, DTYPE_CODE[dtype], false, false]);
  }
  toDevice(device: string): Tensor {
    checkDevice(device);
    return callT('aten::to.device', [this, device, this.handle.dtypeCode, false, false]);
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  clone(): Tensor {
    return callT('aten::clone', [this]);
  }
  /** This tensor laid out in a memory format (itself when it already is). */
  contiguous(memoryFormat: MemoryFormat = 'contiguous'): Tensor {
    return callT('aten::contiguous', [this, MEMORY_FORMAT_CODE[memoryFormat]]);
  }
  isContiguous(memoryFormat: MemoryFormat = 'contiguous'): boolean {
    // is_contiguous is a Tensor method, not a dispatcher op, in libtorch 1.13.
    // aten::contiguous returns its very input when it already is contiguous
    // (call() then hands back this same object), else a copy we drop.
    const c = this.contiguous(memoryFormat);
    if (c === this) return true;
    c.dispose();
    return false;
  }
  /** Elements to step over per dim. */
  strides(): number[] {
    return this.shape.map((_, d) => call('aten::stride.int', [this, d]) as number);
  }
  /**
   * Re-points this tensor at src's storage, shape and strides, keeping this
   * handle (and its requiresGrad): PyTorch's `t.data = src`. For parameters
   * (a module changing their layout, or a pruned module its shape, before an
   * optimizer holds them); runs without grad recording.
   */
  setData_(src: Tensor): this {
    noGradSet(this, src);
    this.cachedShape = undefined;
    return this;
  }

  // ---- shape and views -------------------------------------------------------------
  reshape(shape: number[]): Tensor {
    return callT('aten::reshape', [this, shape]);
  }
  view(shape: number[]): Tensor {
    return callT('aten::view', [this, shape]);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return callT('aten::flatten.using_ints', [this, startDim, endDim]);
  }
  permute(dims: number[]): Tensor {
    return callT('aten::permute', [this, dims]);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return callT('aten::transpose.int', [this, dim0, dim1]);
  }
  t(): Tensor {
    return callT('aten::t', [this]);
  }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? callT('aten::squeeze', [this]) : callT('aten::squeeze.dim', [this, dim]);
  }
  unsqueeze(dim: number): Tensor {
    return callT('aten::unsqueeze', [this, dim]);
  }
  expand(shape: number[]): Tensor {
    return callT('aten::expand', [this, shape]);
  }
  expandAs(other: Tensor): Tensor {
    return callT('aten::expand_as', [this, other]);
  }
  repeat(times: number[]): Tensor {
    return callT('aten::repeat', [this, times]);
  }
  /** Elements start..end (exclusive) of one dim, with a step. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return callT('aten::slice.Tensor', [this, dim, start ?? null, end ?? null, step]);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return callT('aten::narrow', [this, dim, start, length]);
  }
  select(dim: number, index: number): Tensor {
    return callT('aten::select.int', [this, dim, index]);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return callT('aten::index_select', [this, dim, index]);
  }
  /** Advanced indexing: one index tensor (or null for ':') per leading dim. */
  index(indices: (Tensor | null)[]): Tensor {
    return callT('aten::index.Tensor', [this, indices]);
  }
  gather(dim: number, index: Tensor): Tensor {
    return callT('aten::gather', [this, dim, index, false]);
  }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return src instanceof Tensor ? callT('aten::scatter.src', [this, dim, index, src]) : callT('aten::scatter.value', [this, dim, index, src]);
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return callT('aten::masked_fill.Scalar', [this, mask, value]);
  }
  maskedSelect(mask: Tensor): Tensor {
    return callT('aten::masked_select', [this, mask]);
  }
  flip(dims: number[]): Tensor {
    return callT('aten::flip', [this, dims]);
  }
  roll(shifts: number[], dims: number[]): Tensor {
    return callT('aten::roll', [this, shifts, dims]);
  }
  split(size: number, dim = 0): Tensor[] {
    return call('aten::split.Tensor', [this, size, dim]) as Tensor[];
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return call('aten::chunk', [this, chunks, dim]) as Tensor[];
  }
  unbind(dim = 0): Tensor[] {
    return call('aten::unbind.int', [this, dim]) as Tensor[];
  }

  // ---- elementwise arithmetic (broadcasting) ------------------------------------------------
  add(other: TensorOrScalar, alpha = 1): Tensor {
    return other instanceof Tensor ? callT('aten::add.Tensor', [this, other, alpha]) : callT('aten::add.Scalar', [this, other, alpha]);
  }
  sub(other: TensorOrScalar, alpha = 1): Tensor {
    return other instanceof Tensor ? callT('aten::sub.Tensor', [this, other, alpha]) : callT('aten::sub.Scalar', [this, other, alpha]);
  }
  /** other - this */
  rsub(other: number): Tensor {
    return callT('aten::rsub.Scalar', [this, other, 1]);
  }
  mul(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::mul.Tensor', 'aten::mul.Scalar');
  }
  div(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::div.Tensor', 'aten::div.Scalar');
  }
  pow(exponent: TensorOrScalar): Tensor {
    return binary(this, exponent, 'aten::pow.Tensor_Tensor', 'aten::pow.Tensor_Scalar');
  }
  remainder(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::remainder.Tensor', 'aten::remainder.Scalar');
  }
  maximum(other: Tensor): Tensor {
    return callT('aten::maximum', [this, other]);
  }
  minimum(other: Tensor): Tensor {
    return callT('aten::minimum', [this, other]);
  }
  neg(): Tensor {
    return callT('aten::neg', [this]);
  }
  abs(): Tensor {
    return callT('aten::abs', [this]);
  }
  exp(): Tensor {
    return callT('aten::exp', [this]);
  }
  log(): Tensor {
    return callT('aten::log', [this]);
  }
  log1p(): Tensor {
    return callT('aten::log1p', [this]);
  }
  sqrt(): Tensor {
    return callT('aten::sqrt', [this]);
  }
  rsqrt(): Tensor {
    return callT('aten::rsqrt', [this]);
  }
  square(): Tensor {
    return callT('aten::square', [this]);
  }
  reciprocal(): Tensor {
    return callT('aten::reciprocal', [this]);
  }
  sin(): Tensor {
    return callT('aten::sin', [this]);
  }
  cos(): Tensor {
    return callT('aten::cos', [this]);
  }
  tanh(): Tensor {
    return callT('aten::tanh', [this]);
  }
  sigmoid(): Tensor {
    return callT('aten::sigmoid', [this]);
  }
  relu(): Tensor {
    return callT('aten::relu', [this]);
  }
  erf(): Tensor {
    return callT('aten::erf', [this]);
  }
  floor(): Tensor {
    return callT('aten::floor', [this]);
  }
  ceil(): Tensor {
    return callT('aten::ceil', [this]);
  }
  round(): Tensor {
    return callT('aten::round', [this]);
  }
  sign(): Tensor {
    return callT('aten::sign', [this]);
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return callT('aten::clamp', [this, min ?? null, max ?? null]);
  }
  lerp(end: Tensor, weight: number): Tensor {
    return callT('aten::lerp.Scalar', [this, end, weight]);
  }

  // ---- comparison and logic ----------------------------------------------------------------
  eq(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::eq.Tensor', 'aten::eq.Scalar');
  }
  ne(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::ne.Tensor', 'aten::ne.Scalar');
  }
  lt(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::lt.Tensor', 'aten::lt.Scalar');
  }
  le(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::le.Tensor', 'aten::le.Scalar');
  }
  gt(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::gt.Tensor', 'aten::gt.Scalar');
  }
  ge(other: TensorOrScalar): Tensor {
    return binary(this, other, 'aten::ge.Tensor', 'aten::ge.Scalar');
  }
  logicalAnd(other: Tensor): Tensor {
    return callT('aten::logical_and', [this, other]);
  }
  logicalOr(other: Tensor): Tensor {
    return callT('aten::logical_or', [this, other]);
  }
  logicalNot(): Tensor {
    return callT('aten::logical_not', [this]);
  }
  isnan(): Tensor {
    return callT('aten::isnan', [this]);
  }
  isfinite(): Tensor {
    return callT('aten::isfinite', [this]);
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return call('aten::allclose', [this, other, rtol, atol, false]) as boolean;
  }
  equal(other: Tensor): boolean {
    return call('aten::equal', [this, other]) as boolean;
  }

  // ---- reductions -----------------------------------------------------------------------------
  sum(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? callT('aten::sum', [this]) : callT('aten::sum.dim_IntList', [this, dim, keepdim]);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? callT('aten::mean', [this]) : callT('aten::mean.dim', [this, dim, keepdim]);
  }
  prod(dim?: number, keepdim = false): Tensor {
    return dim === undefined ? callT('aten::prod', [this]) : callT('aten::prod.dim_int', [this, dim, keepdim]);
  }
  /** Maximum over dims (values only); all elements when dim is omitted. */
  max(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? callT('aten::max', [this]) : callT('aten::amax', [this, dim, keepdim]);
  }
  min(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? callT('aten::min', [this]) : callT('aten::amin', [this, dim, keepdim]);
  }
  /** Maximum along one dim with the indices where it occurs. */
  maxWithIndices(dim: number, keepdim = false): [Tensor, Tensor] {
    return call('aten::max.dim', [this, dim, keepdim]) as [Tensor, Tensor];
  }
  minWithIndices(dim: number, keepdim = false): [Tensor, Tensor] {
    return call('aten::min.dim', [this, dim, keepdim]) as [Tensor, Tensor];
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return callT('aten::argmax', [this, dim ?? null, keepdim]);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return callT('aten::argmin', [this, dim ?? null, keepdim]);
  }
  /** Variance with Bessel's correction by default (correction = 1), as torch.var. */
  var(dim?: number | number[], keepdim = false, correction = 1): Tensor {
    return callT('aten::var.correction', [this, dim ?? null, correction, keepdim]);
  }
  std(dim?: number | number[], keepdim = false, correction = 1): Tensor {
    return callT('aten::std.correction', [this, dim ?? null, correction, keepdim]);
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return callT('aten::logsumexp', [this, dim, keepdim]);
  }
  cumsum(dim: number): Tensor {
    return callT('aten::cumsum', [this, dim]);
  }
  norm(p = 2): Tensor {
    return callT('aten::norm.Scalar', [this, p]);
  }
  any(): Tensor {
    return callT('aten::any', [this]);
  }
  all(): Tensor {
    return callT('aten::all', [this]);
  }
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    return call('aten::topk', [this, k, dim, largest, sorted]) as [Tensor, Tensor];
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    return call('aten::sort', [this, dim, descending]) as [Tensor, Tensor];
  }
  nonzero(): Tensor {
    return callT('aten::nonzero', [this]);
  }

  // ---- linear algebra ---------------------------------------------------------------------------
  matmul(other: Tensor): Tensor {
    return callT('aten::matmul', [this, other]);
  }
  mm(other: Tensor): Tensor {
    return callT('aten::mm', [this, other]);
  }
  bmm(other: Tensor): Tensor {
    return callT('aten::bmm', [this, other]);
  }

  // ---- in place (return this) ---------------------------------------------------------------------
  add_(other: TensorOrScalar, alpha = 1): this {
    if (other instanceof Tensor) call('aten::add_.Tensor', [this, other, alpha]);
    else call('aten::add_.Scalar', [this, other, alpha]);
    return this;
  }
  sub_(other: TensorOrScalar, alpha = 1): this {
    if (other instanceof Tensor) call('aten::sub_.Tensor', [this, other, alpha]);
    else call('aten::sub_.Scalar', [this, other, alpha]);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    call(other instanceof Tensor ? 'aten::mul_.Tensor' : 'aten::mul_.Scalar', [this, other]);
    return this;
  }
  div_(other: TensorOrScalar): this {
    call(other instanceof Tensor ? 'aten::div_.Tensor' : 'aten::div_.Scalar', [this, other]);
    return this;
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    call('aten::addcmul_', [this, t1, t2, value]);
    return this;
  }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    call('aten::addcdiv_', [this, t1, t2, value]);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    call('aten::lerp_.Scalar', [this, end, weight]);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    call('aten::clamp_', [this, min ?? null, max ?? null]);
    return this;
  }
  fill_(value: number): this {
    call('aten::fill_.Scalar', [this, value]);
    return this;
  }
  zero_(): this {
    call('aten::zero_', [this]);
    return this;
  }
  copy_(src: Tensor): this {
    call('aten::copy_', [this, src, false]);
    return this;
  }
  sqrt_(): this {
    call('aten::sqrt_', [this]);
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    call('aten::masked_fill_.Scalar', [this, mask, value]);
    return this;
  }
  uniform_(from = 0, to = 1, generator?: Generator | null): this {
    call('aten::uniform_', [this, from, to, generator ?? null]);
    return this;
  }
  normal_(mean = 0, std = 1, generator?: Generator | null): this {
    call('aten::normal_', [this, mean, std, generator ?? null]);
    return this;
  }
}
