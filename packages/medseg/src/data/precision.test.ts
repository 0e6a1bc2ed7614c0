import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BF16_MIN_SPEEDUP, bf16Candidate, decidePrecision } from './precision.ts';

test('precision rule: fp32 without native bf16 (nothing timed), bf16 only when clearly faster, the reason says which and why', () => {
  const none = bf16Candidate([]);
  assert.equal(none?.precision, 'fp32');
  assert.match(none!.choice.reason, /no native bf16/);
  assert.equal(bf16Candidate(['avx512_bf16']), null);
  // Even a faster-looking timing does not choose bf16 on a CPU without it.
  assert.equal(decidePrecision([], 0.2, 0.1).precision, 'fp32');

  const fast = decidePrecision(['avx512_bf16'], 0.205, 0.159);
  assert.equal(fast.precision, 'bf16');
  assert.match(fast.choice.reason, /^bf16: the CPU has avx512_bf16 and a training step takes 159 ms in bf16 vs 205 ms in fp32 \(1\.29x\)/);
  assert.deepEqual([fast.choice.fp32StepSeconds, fast.choice.bf16StepSeconds, fast.choice.cpuBf16], [0.205, 0.159, ['avx512_bf16']]);

  const marginal = decidePrecision(['amx_bf16'], 0.2, 0.2 / (BF16_MIN_SPEEDUP - 0.02));
  assert.equal(marginal.precision, 'fp32');
  assert.match(marginal.choice.reason, /^fp32: .* under the 1\.1x that bf16 must gain/);
  assert.equal(decidePrecision(['amx_bf16'], 0.2, 0.25).precision, 'fp32');
});
