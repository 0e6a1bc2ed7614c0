/**
 * Pairwise-masked secure aggregation: the unmasked sum of three sites equals
 * the sum of their vectors to the fixed-point resolution; one site's masked
 * vector passes a chi-square test for uniform bytes and does not correlate
 * with its values; the sum without one site is garbage, not a partial sum;
 * values that could wrap the sum are refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../util/random.ts';
import { FIXED_POINT_SCALE, maskVector, newMaskingKeys, SecureAggregationError, unmaskSum } from './secure-aggregation.ts';

function sites(n: number, length: number, seed: number) {
  const rnd = seededRandom(seed);
  return Array.from({ length: n }, (_, k) => ({
    id: `site-${k}`,
    keys: newMaskingKeys(),
    values: Float32Array.from({ length }, () => (rnd() - 0.5) * 4),
  }));
}

function maskAll(s: ReturnType<typeof sites>, round: number): Uint32Array[] {
  return s.map((me) =>
    maskVector(
      me.values,
      me,
      s.filter((p) => p !== me).map((p) => ({ id: p.id, publicKey: p.keys.publicKey })),
      round,
    ),
  );
}

test('the sum of the masked vectors is the sum of the values', () => {
  const s = sites(3, 50_000, 1);
  const sum = unmaskSum(maskAll(s, 7));
  let worst = 0;
  for (let i = 0; i < sum.length; i++) worst = Math.max(worst, Math.abs(sum[i]! - s.reduce((a, x) => a + x.values[i]!, 0)));
  assert.ok(worst <= (1.5 * s.length) / FIXED_POINT_SCALE, `largest error ${worst}`);
});

test("one site's masked vector looks like uniform noise to the coordinator", () => {
  const s = sites(3, 50_000, 2);
  const masked = maskAll(s, 1);
  const bytes = new Uint8Array(masked[1]!.buffer);
  const counts = new Float64Array(256);
  for (const b of bytes) counts[b]!++;
  const expected = bytes.length / 256;
  const chi2 = counts.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
  // 255 degrees of freedom: the 0.999 quantile is about 330.
  assert.ok(chi2 < 330, `chi-square ${chi2.toFixed(1)} for uniform bytes`);
  // No linear trace of the values: Pearson correlation of the signed words with them.
  const v = s[1]!.values;
  const w = Array.from(masked[1]!, (x) => x | 0);
  const mean = (a: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]!;
    return s / a.length;
  };
  const mv = mean(v);
  const mw = mean(w);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < v.length; i++) {
    sxy += (v[i]! - mv) * (w[i]! - mw);
    sxx += (v[i]! - mv) ** 2;
    syy += (w[i]! - mw) ** 2;
  }
  const r = sxy / Math.sqrt(sxx * syy);
  assert.ok(Math.abs(r) < 4 / Math.sqrt(v.length), `correlation of masked words with the values: ${r}`);
  // Two sites' sum without the third is masked too.
  const partial = unmaskSum([masked[0]!, masked[1]!]);
  const truth = s[0]!.values.map((x, i) => x + s[1]!.values[i]!);
  const close = partial.filter((x, i) => Math.abs(x - truth[i]!) < 0.01).length;
  assert.ok(close < partial.length * 0.01, `${close} of ${partial.length} partial sums leak`);
});

test('a round uses fresh masks, and out-of-range values and repeated ids are refused', () => {
  const s = sites(2, 1000, 3);
  const [a1] = maskAll(s, 1);
  const [a2] = maskAll(s, 2);
  assert.notDeepEqual(a1, a2, 'another round, other masks');
  const me = s[0]!;
  const peer = { id: s[1]!.id, publicKey: s[1]!.keys.publicKey };
  assert.throws(() => maskVector([100], me, [peer], 1), SecureAggregationError);
  assert.throws(() => maskVector([Number.NaN], me, [peer], 1), SecureAggregationError);
  assert.throws(() => maskVector([0], me, [{ ...peer, id: me.id }], 1), SecureAggregationError);
});
