/**
 * The plan's precision rule: train (and, decided apart, predict) in bf16
 * mixed precision when the CPU computes bf16 natively (AVX512_BF16 or
 * AMX_BF16) and a timed training step (a timed inference pass) of the
 * planned network is clearly faster in bf16; fp32 otherwise. The two differ:
 * the backward pass and the optimizer gain from bf16 where a forward pass of
 * small tiles may lose to the casts. Without native bf16 instructions libtorch emulates bf16, which
 * is slower than fp32, so nothing is timed. "Clearly": at least
 * BF16_MIN_SPEEDUP faster, so timing noise on a shared machine cannot flip a
 * plan into a lower precision for nothing.
 */
import type { Precision, PrecisionChoice } from '../plan/types.ts';

/** bf16 must make a step at least this much faster (fp32 / bf16) to be chosen. */
export const BF16_MIN_SPEEDUP = 1.1;

export interface PrecisionDecision {
  precision: Precision;
  choice: PrecisionChoice;
}

/** The CPU side of the rule: whether timing bf16 is worth it at all. */
export function bf16Candidate(cpuBf16: string[]): PrecisionDecision | null {
  if (cpuBf16.length > 0) return null;
  return {
    precision: 'fp32',
    choice: { reason: 'fp32: this CPU has no native bf16 instructions (avx512_bf16 or amx_bf16); emulated bf16 would be slower', cpuBf16 },
  };
}

/** The decision from the two timed steps (seconds) on a CPU with native bf16; `what` names what was timed. */
export function decidePrecision(cpuBf16: string[], fp32StepSeconds: number, bf16StepSeconds: number, what = 'a training step'): PrecisionDecision {
  const cpu = bf16Candidate(cpuBf16);
  if (cpu) return cpu;
  const speedup = fp32StepSeconds / bf16StepSeconds;
  const times = { cpuBf16, fp32StepSeconds, bf16StepSeconds };
  const measured = `${what} takes ${fmt(bf16StepSeconds)} in bf16 vs ${fmt(fp32StepSeconds)} in fp32 (${speedup.toFixed(2)}x)`;
  if (Number.isFinite(speedup) && speedup >= BF16_MIN_SPEEDUP) {
    return { precision: 'bf16', choice: { reason: `bf16: the CPU has ${cpuBf16.join(', ')} and ${measured}`, ...times } };
  }
  return {
    precision: 'fp32',
    choice: { reason: `fp32: the CPU has ${cpuBf16.join(', ')} but ${measured}, under the ${BF16_MIN_SPEEDUP}x that bf16 must gain`, ...times },
  };
}

function fmt(s: number): string {
  return `${(s * 1000).toFixed(0)} ms`;
}
