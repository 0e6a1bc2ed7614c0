/**
 * Mixed precision on the CPU: libtorch's autocast, as a scope.
 *
 *   const logits = autocast({ dtype: 'bfloat16' }, () => net.forward(x));
 *
 * Inside the scope every op goes through libtorch's AutocastCPU kernels
 * first: convolutions, matmul, linear and bmm cast their inputs (and the fp32
 * weights) to bfloat16; the ops libtorch keeps in float32 (losses, some
 * pooling, transposed convolutions in libtorch 1.13) cast to float32; ops with
 * several inputs of mixed types (cat, stack, add) promote to the wider type;
 * everything else runs in the dtype it is given (a norm or activation after a
 * bf16 conv runs in bf16). Parameters stay float32 (the master weights):
 * autocast casts a bf16 copy of each weight once per outermost scope and
 * gradients flow back to the float32 parameters, so the optimizer steps in
 * float32. Compute a loss in float32 (`logits.float()`) and call backward
 * outside the scope, as with torch.autocast.
 *
 * The state is per thread (like grad mode) and `fn` must be synchronous: the
 * previous state is restored when fn returns or throws, and scopes nest.
 */
import { readFileSync } from 'node:fs';
import { native } from './native.ts';
import { DTYPE_CODE, dtypeFromCode, type DType } from './dtype.ts';

/** The low-precision dtypes CPU autocast supports (libtorch 1.13: bfloat16 only). */
export type AutocastDType = 'bfloat16';

export interface AutocastOptions {
  /** The low-precision dtype (default bfloat16). */
  dtype?: AutocastDType;
  /** false runs fn with autocast off, e.g. an fp32 island inside a bf16 scope. */
  enabled?: boolean;
  /** Keep one low-precision copy of each fp32 weight for the whole outermost scope (default true). */
  cache?: boolean;
}

/** Runs fn with CPU autocast on (or off, with enabled: false); restores the previous state after, even on throw. */
export function autocast<T>(o: AutocastOptions, fn: () => T): T {
  const dtype = o.dtype ?? 'bfloat16';
  if (dtype !== 'bfloat16') throw new TypeError(`autocast: CPU autocast runs in bfloat16, not ${String(dtype)}`);
  const prev = native.autocastState();
  native.setAutocast(o.enabled ?? true, DTYPE_CODE[dtype], o.cache ?? true);
  native.autocastIncrementNesting();
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('autocast: fn must be synchronous (the autocast state is per thread and would leak into other work)');
    return r;
  } finally {
    // Leaving the outermost scope drops the cached weight casts.
    if (native.autocastDecrementNesting() === 0) native.autocastClearCache();
    native.setAutocast(prev.enabled, prev.dtypeCode, prev.cacheEnabled);
  }
}

/** Whether CPU autocast is on for this thread. */
export function isAutocastEnabled(): boolean {
  return native.autocastState().enabled;
}

/** The dtype CPU autocast casts to when on. */
export function autocastDtype(): DType {
  return dtypeFromCode(native.autocastState().dtypeCode);
}

/** The CPU's bfloat16 instructions, read from /proc/cpuinfo (Linux x86). */
export interface Bf16Support {
  /** The CPU computes bf16 dot products natively (AVX512_BF16 or AMX_BF16); elsewhere bf16 is emulated and slower than fp32. */
  native: boolean;
  /** The bf16 flags found, e.g. ['avx512_bf16']. */
  flags: string[];
}

const BF16_FLAGS = ['avx512_bf16', 'amx_bf16'];

/** Which bf16 instructions the CPU has; `cpuinfo` is the text of /proc/cpuinfo (read when omitted; none found where it is missing). */
export function bf16Support(cpuinfo?: string): Bf16Support {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const flagsLine = text.split('\n').find((l) => /^flags\s*:/.test(l)) ?? '';
  const present = new Set(
    flagsLine
      .replace(/^flags\s*:/, '')
      .trim()
      .split(/\s+/),
  );
  const flags = BF16_FLAGS.filter((f) => present.has(f));
  return { native: flags.length > 0, flags };
}
