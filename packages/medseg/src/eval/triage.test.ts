import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../util/random.ts';
import { runPythonJson } from '../testing/python.ts';
import { auroc, chooseTriageRule } from './triage.ts';

test('AUROC equals SciPy Mann-Whitney U / (n_pos n_neg), ties included', () => {
  const rnd = seededRandom(2);
  const scores = Array.from({ length: 60 }, () => Math.round(rnd() * 10) / 10); // many ties
  const positive = scores.map((s) => rnd() < 0.3 + 0.5 * s);
  const ref = runPythonJson<number>(
    [
      '-c',
      'import json,sys; from scipy.stats import mannwhitneyu; d=json.load(sys.stdin); p=[s for s,l in zip(*d) if l]; n=[s for s,l in zip(*d) if not l]; print(json.dumps(mannwhitneyu(p, n).statistic / (len(p)*len(n))))',
    ],
    [scores, positive],
  );
  assert.ok(Math.abs(auroc(scores, positive) - ref) < 1e-12, `${auroc(scores, positive)} vs ${ref}`);
  assert.equal(auroc([1, 2, 3, 4], [false, false, true, true]), 1);
  assert.equal(auroc([1, 2, 3, 4], [true, true, false, false]), 0);
  assert.throws(() => auroc([1, 2], [true, true]), /both classes/);
  assert.throws(() => auroc([1, NaN], [true, false]), /not a finite number/);
});

test('the triage threshold flags the fewest cases that hold the wanted share of failures', () => {
  const scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
  const dice = [0.9, 0.9, 0.5, 0.9, 0.9, 0.7, 0.9, 0.6, 0.9, 0.4];
  // Failures (Dice < 0.8) score 0.3, 0.6, 0.8, 1.0: catching 3 of 4 (75 %) needs threshold 0.6.
  const r = chooseTriageRule(scores, dice, { capture: 0.75 });
  assert.equal(r.threshold, 0.6);
  assert.equal(r.capturedFailures, 0.75);
  assert.equal(r.flaggedFraction, 0.5);
  assert.equal(r.failures, 4);
  assert.ok(
    r.auroc !== null &&
      Math.abs(
        r.auroc -
          auroc(
            scores,
            dice.map((d) => d < 0.8),
          ),
      ) < 1e-12,
  );
  // All of them: down to 0.3.
  assert.equal(chooseTriageRule(scores, dice, { capture: 1 }).threshold, 0.3);
  // No failures: nothing seen is flagged.
  const none = chooseTriageRule([0.1, 0.2], [0.9, 0.95]);
  assert.equal(none.flaggedFraction, 0);
  assert.equal(none.auroc, null);
  assert.throws(() => chooseTriageRule([1], [0.5, 0.6]), /1 scores but 2 Dice/);
});
