/**
 * Classification metrics against scikit-learn (Debian python3-sklearn):
 * roc_auc_score (binary with ties, multi-class one-vs-rest macro),
 * accuracy_score, balanced_accuracy_score, the confusion matrix at a
 * threshold, and the operating points read off roc_curve (Youden and the
 * first threshold reaching a target sensitivity). Plus hand-built cases with
 * known answers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPythonJson } from '../testing/python.ts';
import { seededRandom } from '../util/random.ts';
import { chooseThreshold, classificationMetrics, confusionAt, rocAuc, softmaxRows } from './classification.ts';

const SKLEARN = `
import json, sys, numpy as np
from sklearn import metrics
cases = json.load(sys.stdin)
out = []
for c in cases:
    p = np.array(c['probs']).reshape(-1, c['K']); y = np.array(c['labels'])
    pred = p.argmax(1)
    r = {'acc': metrics.accuracy_score(y, pred), 'bacc': metrics.balanced_accuracy_score(y, pred)}
    if c['K'] == 2:
        s = p[:, 1]
        r['auc'] = metrics.roc_auc_score(y, s)
        tn, fp, fn, tp = metrics.confusion_matrix(y, (s >= 0.5).astype(int), labels=[0, 1]).ravel()
        r['conf'] = [int(tp), int(fp), int(tn), int(fn)]
        fpr, tpr, thr = metrics.roc_curve(y, s, drop_intermediate=False)
        j = tpr - fpr
        r['youden'] = float(thr[int(np.argmax(j))])
        r['sens90'] = float(thr[int(np.argmax(tpr >= 0.9 - 1e-12))])
    else:
        r['auc'] = metrics.roc_auc_score(y, p, multi_class='ovr', average='macro')
    out.append(r)
print(json.dumps(out))
`;

function randomCase(seed: number, n: number, K: number, ties: boolean): { probs: number[]; labels: number[]; K: number } {
  const rand = seededRandom(seed);
  const labels: number[] = [];
  const logits: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = Math.floor(rand() * K);
    labels.push(y);
    for (let k = 0; k < K; k++) {
      const z = (k === y ? 1.2 : 0) + 1.5 * (rand() - 0.5) * 2;
      logits.push(ties ? Math.round(z * 2) / 2 : z);
    }
  }
  return { probs: Array.from(softmaxRows(logits, K)), labels, K };
}

test('classification metrics match scikit-learn (binary with and without ties, 3 and 4 classes)', () => {
  const cases = [
    randomCase(1, 300, 2, false),
    randomCase(2, 257, 2, true),
    randomCase(3, 200, 3, false),
    randomCase(4, 150, 4, true),
    randomCase(5, 40, 2, true),
  ];
  const ref = runPythonJson<Array<{ acc: number; bacc: number; auc: number; conf?: [number, number, number, number]; youden?: number; sens90?: number }>>(
    ['-c', SKLEARN],
    cases,
  );
  cases.forEach((c, i) => {
    const r = ref[i]!;
    const m = classificationMetrics(c.probs, c.labels, c.K);
    assert.ok(Math.abs(m.accuracy - r.acc) < 1e-12, `case ${i} accuracy ${m.accuracy} vs ${r.acc}`);
    assert.ok(Math.abs(m.balancedAccuracy - r.bacc) < 1e-12, `case ${i} balanced accuracy ${m.balancedAccuracy} vs ${r.bacc}`);
    assert.ok(Math.abs(m.auc - r.auc) < 1e-12, `case ${i} AUC ${m.auc} vs ${r.auc}`);
    if (c.K === 2) {
      const op = m.operatingPoint!;
      assert.deepEqual([op.tp, op.fp, op.tn, op.fn], r.conf, `case ${i} confusion at 0.5`);
      const scores = c.probs.filter((_, j) => j % 2 === 1);
      // Youden: sklearn's argmax takes the first (highest) threshold on ties, as chooseThreshold does.
      assert.ok(Math.abs(chooseThreshold(scores, c.labels, { kind: 'youden' }).threshold - r.youden!) < 1e-12, `case ${i} Youden threshold`);
      const s90 = chooseThreshold(scores, c.labels, { kind: 'sensitivity', target: 0.9 });
      assert.ok(Math.abs(s90.threshold - r.sens90!) < 1e-12, `case ${i} threshold for sensitivity 0.9`);
      assert.ok(s90.sensitivity >= 0.9);
    }
  });
});

test('classification metrics: hand-built cases', () => {
  // Perfect separation, reversed, and all tied.
  assert.equal(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assert.equal(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
  assert.equal(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  // Of four positive-negative pairs three are ordered and one tied: (3 + 0.5) / 4.
  assert.equal(rocAuc([0.3, 0.6, 0.6, 0.9], [0, 0, 1, 1]), (3 + 0.5) / 4);
  assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [1, 1])));
  const c = confusionAt([0.1, 0.4, 0.6, 0.9, 0.7], [0, 1, 0, 1, 1], 0.5);
  assert.deepEqual([c.tp, c.fp, c.tn, c.fn], [2, 1, 1, 1]);
  assert.equal(c.sensitivity, 2 / 3);
  assert.equal(c.specificity, 1 / 2);
  // Target sensitivity 1 needs the lowest positive's score as threshold.
  assert.equal(chooseThreshold([0.1, 0.4, 0.6, 0.9, 0.7], [0, 1, 0, 1, 1], { kind: 'sensitivity', target: 1 }).threshold, 0.4);
  assert.throws(() => chooseThreshold([0.1, 0.2], [1, 1], { kind: 'youden' }), /both classes/);
  assert.throws(() => rocAuc([0.1, 0.2], [0, 2]), /not 0 or 1/);
  assert.throws(() => classificationMetrics([0.5, 0.5], [0, 1], 2), /expected 2 cases/);
  // A threshold replaces the argmax for binary accuracy.
  const m = classificationMetrics([0.8, 0.2, 0.7, 0.3, 0.4, 0.6], [1, 1, 1], 2, { threshold: 0.25 });
  assert.equal(m.accuracy, 2 / 3);
  assert.equal(m.operatingPoint!.tp, 2);
});
