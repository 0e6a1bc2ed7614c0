/**
 * The report's uncertainty and explanation section: the failure AUROC and
 * Spearman's rho against SciPy on the same cases, the flagged counts, and
 * the rendered table, scatter points and overlays of a report built from
 * metric rows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPythonJson } from '../../testing/python.ts';
import { seededRandom } from '../../util/random.ts';
import type { MetricRow } from '../statistics/rows.ts';
import { encodePngPixels } from '../../io/image2d-png.ts';
import { summarizeUncertainty, type CaseUncertainty } from './confidence-section.ts';
import { renderReportHtml } from './html-report.ts';

/** 40 cases whose Dice falls as the score rises, with noise; cases scoring at least 0.6 are flagged. */
function cases(seed: number) {
  const rnd = seededRandom(seed);
  const ids = Array.from({ length: 40 }, (_, i) => `case_${String(i).padStart(3, '0')}`);
  const score = ids.map(() => rnd());
  const dice = score.map((s) => Math.min(1, Math.max(0, 0.95 - 0.3 * s + 0.15 * (rnd() - 0.5))));
  const scores: CaseUncertainty[] = ids.map((id, i) => ({ model: 'unet', case: id, score: score[i]!, flagged: score[i]! >= 0.6, threshold: 0.6 }));
  return { ids, score, dice, scores };
}

test('summarizeUncertainty: AUROC and rho equal SciPy, the flags are counted, unevaluated cases are reported', () => {
  const { ids, score, dice, scores } = cases(3);
  const quality = new Map(ids.slice(0, 38).map((id, i) => [id, dice[i]!]));
  const s = summarizeUncertainty('unet', scores, quality, 0.8);
  const ref = runPythonJson<{ auc: number; rho: number }>(
    [
      '-c',
      `import json, sys
from scipy.stats import mannwhitneyu, spearmanr
d = json.load(sys.stdin)
pos = [s for s, q in zip(d['score'], d['dice']) if q < 0.8]
neg = [s for s, q in zip(d['score'], d['dice']) if q >= 0.8]
u = mannwhitneyu(pos, neg).statistic
print(json.dumps({'auc': float(u) / (len(pos) * len(neg)), 'rho': float(spearmanr(d['score'], d['dice']).correlation)}))`,
    ],
    { score: score.slice(0, 38), dice: dice.slice(0, 38) },
  );
  assert.equal(s.cases, 38);
  assert.equal(s.unmatched, 2);
  assert.equal(s.failures, dice.slice(0, 38).filter((d) => d < 0.8).length);
  assert.ok(s.failures > 0 && s.failures < 38, `a mix of failures and successes: ${s.failures}`);
  assert.ok(Math.abs(s.auroc! - ref.auc) < 1e-12, `AUROC ${s.auroc} vs SciPy ${ref.auc}`);
  assert.ok(Math.abs(s.spearman - ref.rho) < 1e-12, `rho ${s.spearman} vs SciPy ${ref.rho}`);
  assert.ok(s.auroc! > 0.7 && s.spearman < -0.5, 'the score tracks the failures it was built to track');
  assert.equal(s.flagged, score.slice(0, 38).filter((x) => x >= 0.6).length);
  assert.equal(s.flaggedFailures, score.slice(0, 38).filter((x, i) => x >= 0.6 && dice[i]! < 0.8).length);
  assert.equal(s.threshold, 0.6);

  const allGood = summarizeUncertainty('unet', scores, new Map(ids.map((id) => [id, 0.9])), 0.8);
  assert.equal(allGood.auroc, null, 'no failure: no AUROC');
  const noFlags = summarizeUncertainty(
    'unet',
    scores.map(({ flagged: _, ...r }) => r),
    quality,
    0.8,
  );
  assert.equal(noFlags.flagged, null, 'no triage rule: no flag count');
});

test('the report shows the uncertainty table and scatter, the explanation table and its overlays', async () => {
  const { ids, dice, scores } = cases(11);
  const rows: MetricRow[] = ids.flatMap((id, i) => [1, 2].map((label) => ({ model: 'unet', case: id, label, dice: dice[i]! + (label === 1 ? 0.01 : -0.01) })));
  const png = encodePngPixels({ width: 4, height: 3, channels: 1, data: new Uint8Array(12).fill(128) });
  const html = await renderReportHtml({
    title: 'confidence',
    rows,
    uncertainty: scores,
    explanations: [
      {
        model: 'unet',
        case: 'case_000',
        method: 'gradcam',
        classIndex: 1,
        massInRegion: 0.734,
        randomisation: { spearman: 0.12, spearmanAbs: 0.2, passes: true },
        deletion: { auc: 0.31, randomAuc: 0.62 },
        seconds: 2.5,
        overlayPng: png,
      },
      { model: 'unet', case: 'case_001', method: 'occlusion', classIndex: 2, randomisation: { spearman: 0.7, spearmanAbs: 0.4, passes: false } },
    ],
  });
  const section = html.slice(html.indexOf('<section id="confidence">'), html.indexOf('</section>', html.indexOf('<section id="confidence">')));
  assert.ok(section.length > 0, 'the section is there');
  const s = summarizeUncertainty('unet', scores, new Map(ids.map((id, i) => [id, dice[i]!])), 0.8);
  const row =
    /<tr data-model="unet"><td>unet<\/td><td class="num">(\d+)<\/td><td class="num">(\d+)<\/td><td class="num">([\d.—]+)<\/td><td class="num">([-\d.—]+)<\/td>/.exec(
      section,
    );
  assert.ok(row, 'an uncertainty row for the model');
  assert.equal(Number(row[1]), 40);
  assert.equal(Number(row[2]), s.failures);
  assert.equal(row[3], s.auroc!.toFixed(3), 'AUROC of the per-case Dice averaged over both labels');
  const points = section.match(/<circle [^>]*>/g) ?? [];
  assert.equal(points.length, 40, 'one scatter point per case');
  assert.equal(points.filter((c) => !c.includes('fill="#fff"')).length, s.flagged, 'flagged cases are filled');
  assert.match(section, /class="review-threshold"/);
  assert.match(section, /<tr data-model="unet" data-method="gradcam">.*73\.4%.*0\.120.*0\.200.*yes.*0\.310.*0\.620.*2\.5/);
  assert.match(section, /data-method="occlusion">.*<strong>no<\/strong>/);
  assert.equal((section.match(/<img /g) ?? []).length, 1, 'the overlay that exists is shown');

  const empty = await renderReportHtml({ title: 'plain', rows });
  assert.match(empty, /<section id="confidence">.*No uncertainty or explanation results supplied/);
});
