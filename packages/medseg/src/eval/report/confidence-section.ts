/**
 * The report's explanation and uncertainty section: how well each model's
 * per-case uncertainty score (from `medseg predict --uncertainty`) predicts
 * its failures, and how faithful its explanations (from `medseg explain`)
 * are, with their overlays.
 *
 * Uncertainty: a case fails when its quality (the primary metric averaged
 * over the labels) is below a bar; the AUROC says how well the score ranks
 * failures above successes, Spearman's rho how it follows the quality
 * (negative is good), and the flagged cases how many reviews the model's
 * triage rule asks for and how many failures they catch.
 * Explanations: the randomisation test (rank correlation with a randomly
 * initialised network's map, plain and absolute; both below 0.5 passes) and
 * the deletion curve's area against a random deletion order (smaller is more
 * faithful).
 */
import { spearman } from '../statistics/correlation.ts';
import { auroc } from '../triage.ts';
import { escapeXml as e, fmtNum, triageScatter } from './plots.ts';

export interface CaseUncertainty {
  model: string;
  case: string;
  /** The case's uncertainty score (higher: less sure). */
  score: number;
  /** Whether the model's triage rule flags the case (null: the model has no rule). */
  flagged?: boolean | null;
  threshold?: number | null;
}

export interface ExplanationRecord {
  model: string;
  case: string;
  method: string;
  classIndex: number;
  /** Share of the map's positive mass inside the explained region. */
  massInRegion?: number | null;
  randomisation?: { spearman: number; spearmanAbs: number; passes: boolean } | null;
  deletion?: { auc: number; randomAuc: number } | null;
  seconds?: number | null;
  overlayPng?: Uint8Array;
}

export interface UncertaintySummary {
  model: string;
  /** Cases with both a score and a quality value. */
  cases: number;
  /** Scored cases with no quality value (not in the evaluation). */
  unmatched: number;
  failures: number;
  /** AUROC of the score for "quality below the bar"; null with only failures or only successes. */
  auroc: number | null;
  /** Spearman's rho of score and quality. */
  spearman: number;
  /** Cases the triage rule flags (null when no case carries a flag). */
  flagged: number | null;
  /** Failures among the flagged cases. */
  flaggedFailures: number | null;
  threshold: number | null;
  points: { id: string; score: number; quality: number; flagged: boolean }[];
}

/** The uncertainty numbers of one model: `quality` maps a case id to its primary metric. */
export function summarizeUncertainty(
  model: string,
  scores: readonly CaseUncertainty[],
  quality: ReadonlyMap<string, number>,
  failureBelow: number,
): UncertaintySummary {
  const own = scores.filter((s) => s.model === model && Number.isFinite(s.score));
  const matched = own.filter((s) => Number.isFinite(quality.get(s.case)));
  const points = matched.map((s) => ({ id: s.case, score: s.score, quality: quality.get(s.case)!, flagged: s.flagged === true }));
  const failed = points.map((p) => p.quality < failureBelow);
  const failures = failed.filter(Boolean).length;
  const hasFlags = matched.some((s) => s.flagged === true || s.flagged === false);
  const thresholds = [...new Set(matched.map((s) => s.threshold).filter((t): t is number => typeof t === 'number' && Number.isFinite(t)))];
  return {
    model,
    cases: points.length,
    unmatched: own.length - matched.length,
    failures,
    auroc:
      failures > 0 && failures < points.length
        ? auroc(
            points.map((p) => p.score),
            failed,
          )
        : null,
    spearman:
      points.length > 1
        ? spearman(
            points.map((p) => p.score),
            points.map((p) => p.quality),
          )
        : Number.NaN,
    flagged: hasFlags ? points.filter((p) => p.flagged).length : null,
    flaggedFailures: hasFlags ? points.filter((p, i) => p.flagged && failed[i]).length : null,
    threshold: thresholds.length === 1 ? thresholds[0]! : null,
    points,
  };
}

const num = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** The number of overlays shown per model: enough to compare methods without making the report heavy. */
const MAX_OVERLAYS_PER_MODEL = 6;

export interface ConfidenceSectionInput {
  models: readonly string[];
  uncertainty: readonly CaseUncertainty[];
  explanations: readonly ExplanationRecord[];
  /** Per model: case id to the primary metric averaged over labels. */
  quality: (model: string) => ReadonlyMap<string, number>;
  metricName: string;
  failureBelow: number;
  /** Section number and id for the table of contents. */
  heading: string;
}

export function confidenceSection(i: ConfidenceSectionInput): string {
  let h = `<section id="confidence"><h2>${e(i.heading)}</h2>`;
  if (i.uncertainty.length === 0 && i.explanations.length === 0) {
    return `${h}<p class="note">No uncertainty or explanation results supplied (medseg report --uncertainty / --explanations).</p></section>`;
  }
  if (i.uncertainty.length > 0) {
    const sums = i.models.map((m) => summarizeUncertainty(m, i.uncertainty, i.quality(m), i.failureBelow)).filter((s) => s.cases > 0 || s.unmatched > 0);
    h += '<h3>Uncertainty as a failure detector</h3>';
    h += `<table class="uncertainty-table"><thead><tr><th>Model</th><th class="num">Cases</th><th class="num">Failures (${e(i.metricName)} &lt; ${fmtNum(i.failureBelow)})</th><th class="num">AUROC</th><th class="num">Spearman ρ</th><th class="num">Flagged</th><th class="num">Failures flagged</th></tr></thead><tbody>`;
    for (const s of sums) {
      h +=
        `<tr data-model="${e(s.model)}"><td>${e(s.model)}${s.unmatched ? `<br><span class="ci">${s.unmatched} scored case(s) not evaluated</span>` : ''}</td>` +
        `<td class="num">${s.cases}</td><td class="num">${s.failures}</td><td class="num">${num(s.auroc)}</td><td class="num">${num(s.spearman)}</td>` +
        `<td class="num">${s.flagged ?? '—'}</td><td class="num">${s.flaggedFailures === null ? '—' : `${s.flaggedFailures} of ${s.failures}`}</td></tr>`;
    }
    h += '</tbody></table><div class="grid">';
    for (const s of sums.filter((x) => x.cases > 0)) {
      h += `<figure class="plot">${triageScatter({
        title: `${s.model}: uncertainty against ${i.metricName}`,
        xLabel: 'uncertainty score',
        yLabel: i.metricName,
        points: s.points.map((p) => ({ id: p.id, x: p.score, y: p.quality, flagged: p.flagged })),
        failureBelow: i.failureBelow,
        ...(s.threshold !== null ? { threshold: s.threshold } : {}),
      })}</figure>`;
    }
    h += `</div><p class="note">A case fails when its ${e(i.metricName)} (averaged over labels) is below ${fmtNum(i.failureBelow)}. AUROC: how well the score ranks failures above successes (0.5 is chance; “—” when the cases hold only one kind). Spearman ρ of score and ${e(i.metricName)}: negative when the model is less sure where it is worse. Flagged: cases at or above the review threshold the model fitted on its validation cases (dotted line).</p>`;
  }
  if (i.explanations.length > 0) {
    h += '<h3>Explanations and their faithfulness</h3>';
    h +=
      '<table class="explanation-table"><thead><tr><th>Model</th><th>Case</th><th>Method</th><th class="num">Class</th><th class="num">Mass in region</th>' +
      '<th class="num">Randomisation ρ</th><th class="num">|map| ρ</th><th>Passes</th><th class="num">Deletion AUC</th><th class="num">Random-order AUC</th><th class="num">Seconds</th></tr></thead><tbody>';
    for (const x of i.explanations) {
      const r = x.randomisation;
      const d = x.deletion;
      h +=
        `<tr data-model="${e(x.model)}" data-method="${e(x.method)}"><td>${e(x.model)}</td><td>${e(x.case)}</td><td>${e(x.method)}</td><td class="num">${x.classIndex}</td>` +
        `<td class="num">${x.massInRegion === null || x.massInRegion === undefined ? '—' : `${(x.massInRegion * 100).toFixed(1)}%`}</td>` +
        `<td class="num">${num(r?.spearman)}</td><td class="num">${num(r?.spearmanAbs)}</td><td>${r ? (r.passes ? 'yes' : '<strong>no</strong>') : '—'}</td>` +
        `<td class="num">${num(d?.auc)}</td><td class="num">${num(d?.randomAuc)}</td><td class="num">${num(x.seconds ?? null, 1)}</td></tr>`;
    }
    h += '</tbody></table>';
    const shown = i.models.flatMap((m) => i.explanations.filter((x) => x.model === m && x.overlayPng).slice(0, MAX_OVERLAYS_PER_MODEL));
    if (shown.length > 0) {
      h += '<div class="overlays">';
      for (const x of shown) {
        const caption = `${x.model} · ${x.case} · ${x.method} · class ${x.classIndex}`;
        h += `<figure><img alt="${e(caption)}" src="data:image/png;base64,${Buffer.from(x.overlayPng!).toString('base64')}"><figcaption>${e(caption)}</figcaption></figure>`;
      }
      h += '</div>';
    }
    h +=
      '<p class="note">Randomisation test: Spearman rank correlation between the map and the same method’s map from a network of the same architecture with freshly initialised weights, of the values and of their absolute values; a faithful map changes (both below 0.5). Deletion curve: Dice of the class against the intact prediction as the most-attributed voxels are set to the baseline; a faithful map makes it fall faster than a random order (smaller area).</p>';
  }
  return `${h}</section>`;
}
