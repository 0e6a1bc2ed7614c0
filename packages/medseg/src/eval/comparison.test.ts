import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../util/random.ts';
import { compareToOthers } from './comparison.ts';
import type { MetricRow } from './statistics/rows.ts';

/** 20 cases: "hybrid" beats "unet" by 0.05 on every case; "swin" equals "hybrid" up to symmetric noise. */
function rows(): MetricRow[] {
  const rand = seededRandom(9);
  const out: MetricRow[] = [];
  for (let i = 0; i < 20; i++) {
    const base = 0.7 + 0.2 * rand();
    const jitter = (i % 2 ? 1 : -1) * (0.001 + 0.01 * rand());
    out.push({ model: 'hybrid', case: `c${i}`, label: 1, dice: base, hd95: 3 });
    out.push({ model: 'unet', case: `c${i}`, label: 1, dice: base - 0.05 - 0.01 * rand(), hd95: 4 });
    out.push({ model: 'swin', case: `c${i}`, label: 1, dice: base + jitter, hd95: 3 });
  }
  return out;
}

test('compareToOthers: rank, Holm-adjusted paired tests and a verdict that says what the data show', () => {
  const c = compareToOthers(rows(), 'hybrid', 1, 'dice');
  assert.equal(c.models, 3);
  const unet = c.opponents.find((o) => o.model === 'unet')!;
  const swin = c.opponents.find((o) => o.model === 'swin')!;
  assert.equal(unet.outcome, 'better');
  assert.ok(unet.meanDifference > 0.05 && unet.pAdjusted < 0.001);
  assert.equal(swin.outcome, 'no significant difference');
  assert.ok(unet.pAdjusted >= unet.pValue && swin.pAdjusted >= swin.pValue, 'Holm never lowers p');
  // rank from the means computed here
  const mean = (m: string) => {
    const v = rows()
      .filter((r) => r.model === m)
      .map((r) => r.dice as number);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  assert.ok(Math.abs(c.focusMean - mean('hybrid')) < 1e-12);
  assert.equal(c.rank, 1 + ['unet', 'swin'].filter((m) => mean(m) > mean('hybrid')).length);
  assert.match(c.verdict, /best other model, swin/);
  assert.match(c.verdict, /no significant difference at α = 0.05/);
  assert.match(c.verdict, /Against all 2 other models: significantly better than 1, worse than 0, no significant difference from 1/);

  const w = compareToOthers(rows(), 'unet', 1, 'dice');
  assert.equal(w.rank, 3);
  assert.ok(w.opponents.every((o) => o.outcome === 'worse'));
  // lower-is-better metrics flip the direction
  const h = compareToOthers(rows(), 'unet', 1, 'hd95');
  assert.ok(h.opponents.every((o) => o.outcome === 'worse' && o.meanDifference === 1));
  assert.throws(() => compareToOthers(rows(), 'nnunet', 1), /no rows for model nnunet/);
});
