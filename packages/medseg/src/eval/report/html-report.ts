/**
 * One self-contained HTML evaluation report: comparative summary table with
 * bootstrap CIs, distributions, paired tests, calibration, uncertainty and
 * explanations, subgroups, qualitative overlays, timings and links to model
 * cards.
 *
 * Self-contained means it opens offline from a file or an e-mail attachment:
 * inline CSS, inline SVG plots, PNG overlays as data: URIs, no scripts, no
 * fonts or stylesheets from anywhere. A Content-Security-Policy meta tag makes
 * the browser refuse any external load, so a regression shows up as a console
 * error in the browser test instead of a silently broken offline report.
 */
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { writeFileAtomicSync } from '../../util/atomic-write.ts';
import { toCsv } from '../../util/csv.ts';
import { RESEARCH_DISCLAIMER } from './modelcard.ts';
import { eceFromBins, type CalibrationBins } from '../probabilistic.ts';
import { barChart, boxPlot, calibrationPlot, escapeXml, pairedScatter } from './plots.ts';
import { confidenceSection, type CaseUncertainty, type ExplanationRecord } from './confidence-section.ts';
import { MedsegStatsError } from '../statistics/errors.ts';
import { comparePaired, holmAdjust, pairValues, type PairedComparison } from '../statistics/paired.ts';
import { distinct, metricColumns, metricDirection, metricValue, type Direction, type MetricRow, type Subgroups } from '../statistics/rows.ts';
import { subgroupBreakdown } from '../statistics/subgroups.ts';
import { aggregate, type AggregateRow, type BootstrapOptions, type Summary } from '../statistics/summary.ts';
import { hardwareInfo, summarizeInferenceTimes, type Hardware, type TimeSummary } from '../statistics/timing.ts';

export interface ModelInfo {
  name: string;
  /** Family for the comparative table: "CNN", "Transformer", "Hybrid", ... */
  architectureType?: string;
  architecture?: string;
  parameters?: number;
  /** Per-case inference times in milliseconds (array or caseId -> ms). */
  inferenceTimesMs?: readonly number[] | Record<string, number>;
  /** Intra-op threads used while timing. */
  threads?: number;
  /** Link (relative to the report) to the model card. */
  modelCardHref?: string;
}

export type OverlayRank = 'best' | 'median' | 'worst';

export interface OverlaySelection {
  model: string;
  case: string;
  label: number | string;
  metric: string;
  value: number;
  rank: OverlayRank;
}

export interface OverlayImage extends OverlaySelection {
  png: Uint8Array;
  caption?: string;
}

export interface ReportInput {
  title: string;
  subtitle?: string;
  dataset?: string;
  rows: readonly MetricRow[];
  models?: readonly ModelInfo[];
  /** Columns of the comparative table (default: dice, iou, hd95 when present). */
  summaryMetrics?: string[];
  /** Metrics shown as box plots (default: every metric column). */
  plotMetrics?: string[];
  /** Metric that ranks cases for overlays, scatter and subgroups (default 'dice' or the first metric). */
  primaryMetric?: string;
  /** The two models of the per-case scatter (default: the first two). */
  scatterPair?: [string, string];
  subgroups?: Subgroups;
  subgroupColumns?: string[];
  calibration?: Record<string, CalibrationBins>;
  /** Per-case uncertainty scores (`medseg predict --uncertainty`), scored against the primary metric. */
  uncertainty?: readonly CaseUncertainty[];
  /** Explanations with their faithfulness numbers (`medseg explain`). */
  explanations?: readonly ExplanationRecord[];
  /** A case whose Dice (else primary metric), averaged over labels, is below this fails (default 0.8, the triage rule's default bar). */
  failureBelow?: number;
  /** Ready-made overlays; otherwise renderOverlay is asked for best/median/worst per model. */
  overlays?: readonly OverlayImage[];
  renderOverlay?: (sel: OverlaySelection) => Uint8Array | Promise<Uint8Array>;
  bootstrap?: BootstrapOptions;
  directions?: Record<string, Direction>;
  /** Machine the timings were taken on (default: this machine). */
  hardware?: Hardware;
  generatedAt?: Date;
}

// ---------------------------------------------------------------- formatting

const KNOWN_NAMES: Record<string, string> = {
  dice: 'Dice',
  iou: 'IoU',
  jaccard: 'IoU',
  hd95: 'HD95 (mm)',
  hd: 'HD (mm)',
  assd: 'ASSD (mm)',
  masd: 'MASD (mm)',
  nsd: 'NSD',
  precision: 'Precision',
  recall: 'Recall',
  sensitivity: 'Sensitivity',
  specificity: 'Specificity',
};

export function metricDisplayName(m: string): string {
  if (KNOWN_NAMES[m]) return KNOWN_NAMES[m];
  const nsd = /^nsd_?(\d+(?:\.\d+)?)\s*mm$/i.exec(m);
  if (nsd) return `NSD @ ${nsd[1]} mm`;
  return m.replace(/_/g, ' ');
}

function digitsFor(metric: string): number {
  return /hd|assd|masd|dist|mm/.test(metric.toLowerCase()) ? 2 : 3;
}

function fmt(v: number, digits = 3): string {
  if (Number.isNaN(v)) return '—';
  if (!Number.isFinite(v)) return v > 0 ? '+∞' : '−∞';
  return v.toFixed(digits);
}

function fmtParams(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

function fmtP(p: number): string {
  if (Number.isNaN(p)) return '—';
  if (p < 0.001) return '&lt;0.001';
  return p.toFixed(3);
}

const e = escapeXml;

// ---------------------------------------------------------------- selection

/** Best, median and worst finite case of a model by a metric (median = lower middle of the sorted list). */
export function pickBestMedianWorst(
  rows: readonly MetricRow[],
  model: string,
  label: number | string,
  metric: string,
  direction: Direction,
): OverlaySelection[] {
  const cases = rows
    .filter((r) => r.model === model && String(r.label) === String(label))
    .map((r) => ({ case: r.case, value: metricValue(r, metric) ?? Number.NaN }))
    .filter((c) => !Number.isNaN(c.value))
    // ascending in quality: worst first
    .sort((a, b) => (direction === 'higher' ? a.value - b.value : b.value - a.value));
  if (cases.length === 0) return [];
  const pick = (i: number, rank: OverlayRank): OverlaySelection => ({ model, label, metric, rank, ...cases[i]! });
  return [pick(cases.length - 1, 'best'), pick(Math.floor((cases.length - 1) / 2), 'median'), pick(0, 'worst')];
}

// ---------------------------------------------------------------- HTML pieces

const CSS = `
:root{--ink:#1b1f24;--muted:#5b6470;--line:#dde2e8;--band:#f5f7fa;--accent:#0b4f8a;--ok:#1d7a46}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#fff;font:14px/1.5 "Helvetica Neue",Helvetica,Arial,sans-serif}
header{background:#0d2b45;color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:24px;font-weight:600;letter-spacing:.2px}
header .sub{color:#c9d7e6;font-size:14px}
header .meta{margin-top:10px;color:#9fb4ca;font-size:12px}
main{max-width:1200px;margin:0 auto;padding:12px 40px 40px}
nav.toc{margin:18px 0 6px;font-size:13px;color:var(--muted)}
nav.toc a{color:var(--accent);text-decoration:none;margin-right:14px;white-space:nowrap}
section{margin-top:30px}
h2{font-size:18px;font-weight:600;border-bottom:2px solid var(--ink);padding-bottom:4px;margin:0 0 12px}
h3{font-size:15px;font-weight:600;margin:18px 0 8px}
p.note,div.note{color:var(--muted);font-size:12.5px;margin:6px 0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px;margin:6px 0 4px}
th,td{padding:6px 10px;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
thead th{border-top:2px solid var(--ink);border-bottom:1.5px solid var(--ink);font-weight:600;background:#fff}
tbody tr:last-child td{border-bottom:2px solid var(--ink)}
tbody tr:nth-child(even){background:var(--band)}
td.num,th.num{text-align:right;white-space:nowrap}
td .ci{color:var(--muted);font-size:12px}
td.best{font-weight:700}
sup.fn{color:#b35900;font-weight:600}
.sig{color:var(--ok);font-weight:600}
.ns{color:var(--muted)}
.grid{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0}
figure.plot svg{display:block;border:1px solid var(--line);border-radius:4px;max-width:100%;height:auto}
figcaption{font-size:12px;color:var(--muted);margin-top:4px;max-width:520px}
.overlays{display:grid;grid-template-columns:200px repeat(3,minmax(0,220px));gap:10px 14px;align-items:center}
.overlays .model{font-weight:600}
.overlays img{width:100%;max-width:220px;image-rendering:pixelated;border-radius:3px;border:1px solid var(--line);display:block}
.swatch{display:inline-block;width:18px;height:4px;vertical-align:middle;margin:0 4px 0 10px;border-radius:2px}
.callout{background:#fff8e6;border-left:4px solid #e69f00;padding:10px 14px;font-size:13px;margin:12px 0}
.disclaimer{background:#fdecea;border-left:4px solid #c62828;padding:10px 14px;font-size:13px;margin:18px 0}
details{margin:8px 0}
summary{cursor:pointer;color:var(--accent)}
a{color:var(--accent)}
footer{max-width:1200px;margin:0 auto;padding:12px 40px 30px;color:var(--muted);font-size:12px;border-top:1px solid var(--line)}
@media print{header{background:#fff;color:#000}header .sub,header .meta{color:#333}nav.toc{display:none}section{break-inside:avoid}}
`;

function ciCell(s: Summary | undefined, metric: string, best: boolean, fn?: number): string {
  if (!s) return '<td class="num">—</td>';
  const d = digitsFor(metric);
  const mark = fn !== undefined ? `<sup class="fn">${fn}</sup>` : '';
  return (
    `<td class="num${best ? ' best' : ''}" data-metric="${e(metric)}">${fmt(s.mean, d)}${mark}` +
    `<br><span class="ci">[${fmt(s.ci.lower, d)}, ${fmt(s.ci.upper, d)}]</span></td>`
  );
}

interface Context {
  input: ReportInput;
  models: string[];
  labels: (number | string)[];
  info: Map<string, ModelInfo>;
  metrics: string[];
  summaryMetrics: string[];
  primary: string;
  agg: AggregateRow[];
  times: Map<string, TimeSummary>;
  dir: (m: string) => Direction;
  boot: BootstrapOptions;
}

function getAgg(c: Context, model: string, label: number | string, metric: string): AggregateRow | undefined {
  return c.agg.find((a) => a.model === model && String(a.label) === String(label) && a.metric === metric);
}

function summarySection(c: Context): string {
  const footnotes: string[] = [];
  let h = '<section id="summary"><h2>1. Comparative summary</h2>';
  const multi = c.labels.length > 1;
  for (const label of c.labels) {
    if (multi) h += `<h3>Label ${e(label)}</h3>`;
    h += `<table class="summary-table" data-label="${e(label)}"><thead><tr><th>Model</th><th>Architecture type</th>`;
    for (const m of c.summaryMetrics) h += `<th class="num">${e(metricDisplayName(m))}<br><span class="ci">mean [95% CI]</span></th>`;
    h += '<th class="num">Inference time<br><span class="ci">median (p95)</span></th><th class="num">Parameters</th></tr></thead><tbody>';
    const bestOf = new Map<string, number>();
    for (const m of c.summaryMetrics) {
      const means = c.models.map((mod) => getAgg(c, mod, label, m)?.mean ?? Number.NaN).filter(Number.isFinite);
      if (means.length) bestOf.set(m, c.dir(m) === 'higher' ? Math.max(...means) : Math.min(...means));
    }
    for (const model of c.models) {
      const info = c.info.get(model);
      const t = c.times.get(model);
      h += `<tr data-model="${e(model)}"><td><strong>${e(model)}</strong></td><td>${e(info?.architectureType ?? info?.architecture ?? '—')}</td>`;
      // one footnote per table row, listing what each metric left out
      const notes = c.summaryMetrics
        .map((m) => ({ m, s: getAgg(c, model, label, m) }))
        .filter((x) => x.s?.note)
        .map((x) => `${e(metricDisplayName(x.m))}: ${e(x.s!.note.replace(/ excluded from statistics$/, ''))} (mean of ${x.s!.nFinite}/${x.s!.n})`);
      let fn: number | undefined;
      if (notes.length) {
        footnotes.push(`<strong>${e(model)}</strong>${multi ? `, label ${e(label)}` : ''} — ${notes.join('; ')}.`);
        fn = footnotes.length;
      }
      for (const m of c.summaryMetrics) {
        const s = getAgg(c, model, label, m);
        h += ciCell(s, m, s !== undefined && s.mean === bestOf.get(m), s?.note ? fn : undefined);
      }
      h += `<td class="num">${t ? `${fmtMs(t.medianMs)}<br><span class="ci">(${fmtMs(t.p95Ms)})</span>` : '—'}</td>`;
      h += `<td class="num">${fmtParams(info?.parameters)}</td></tr>`;
    }
    h += '</tbody></table>';
  }
  const nCases = distinct(c.input.rows, 'case').length;
  const b = c.boot;
  h += `<p class="note">Means over ${nCases} cases; 95% CI by percentile bootstrap of the mean (${b.resamples ?? 2000} resamples, seed ${b.seed ?? 12345}). Bold: best mean per column. Arrow of goodness: ${c.summaryMetrics.map((m) => `${e(metricDisplayName(m))} ${c.dir(m) === 'higher' ? '↑' : '↓'}`).join(', ')}.</p>`;
  if (footnotes.length) {
    h += `<div class="callout"><strong>Non-finite per-case values are excluded from means and CIs, never counted as 0.</strong><ol>${footnotes.map((f) => `<li>${f}</li>`).join('')}</ol></div>`;
  }
  return `${h}</section>`;
}

function distributionSection(c: Context): string {
  let h = '<section id="distributions"><h2>2. Per-case distributions</h2><div class="grid">';
  for (const label of c.labels) {
    for (const metric of c.metrics) {
      const series = c.models.map((model) => ({
        name: model,
        values: c.input.rows.filter((r) => r.model === model && String(r.label) === String(label)).map((r) => metricValue(r, metric) ?? Number.NaN),
      }));
      const title = `${metricDisplayName(metric)}${c.labels.length > 1 ? ` · label ${label}` : ''}`;
      h += `<figure class="plot">${boxPlot({ title, yLabel: metricDisplayName(metric), series })}</figure>`;
    }
  }
  h +=
    '</div><p class="note">Boxes: quartiles; whiskers: 1.5 × IQR (Tukey); dots: individual cases (hollow = beyond whiskers); diamond: mean. Counts of NaN/±Inf values, which are not drawn, are given under each box.</p></section>';
  return h;
}

function comparisonSection(c: Context, comparisons: PairedComparison[]): string {
  let h = '<section id="paired"><h2>3. Paired comparison</h2>';
  const pair = c.input.scatterPair ?? (c.models.length >= 2 ? [c.models[0]!, c.models[1]!] : undefined);
  if (pair) {
    h += '<div class="grid">';
    for (const label of c.labels) {
      const { cases, a, b } = pairValues(c.input.rows, pair[0], pair[1], label, c.primary);
      const points = cases.map((id, i) => ({ id, x: a[i]!, y: b[i]! }));
      const name = metricDisplayName(c.primary);
      h += `<figure class="plot">${pairedScatter({ title: `${name} per case${c.labels.length > 1 ? ` · label ${label}` : ''}`, xLabel: `${name}: ${pair[0]}`, yLabel: `${name}: ${pair[1]}`, points })}`;
      h += `<figcaption>Each dot is one case. Above the dashed y = x line ${e(pair[1])} scored higher; below it ${e(pair[0])} did.</figcaption></figure>`;
    }
    h += '</div>';
  }
  if (comparisons.length) {
    h +=
      '<h3>Wilcoxon signed-rank tests</h3><table class="wilcoxon-table"><thead><tr><th>Comparison (A − B)</th><th>Metric</th>' +
      (c.labels.length > 1 ? '<th>Label</th>' : '') +
      '<th class="num">Pairs</th><th class="num">Median diff.</th><th class="num">W</th><th class="num">p</th><th class="num">p (Holm)</th><th class="num">r<sub>rb</sub></th><th>Method</th><th>Finding</th></tr></thead><tbody>';
    for (const cmp of comparisons) {
      const w = cmp.wilcoxon;
      const padj = cmp.pAdjusted ?? Number.NaN;
      const favoured = w.rankBiserial > 0 === (cmp.direction === 'higher') ? cmp.modelA : cmp.modelB;
      const finding = Number.isNaN(padj)
        ? '<span class="ns">not testable</span>'
        : padj < 0.05
          ? `<span class="sig">favours ${e(favoured)}</span>`
          : '<span class="ns">n.s.</span>';
      const excl = [
        cmp.nExcluded ? `${cmp.nExcluded} non-finite` : '',
        w.nZero ? `${w.nZero} zero diff.` : '',
        cmp.nUnpaired ? `${cmp.nUnpaired} unpaired` : '',
      ]
        .filter(Boolean)
        .join(', ');
      h +=
        `<tr><td>${e(cmp.modelA)} − ${e(cmp.modelB)}</td><td>${e(metricDisplayName(cmp.metric))}</td>` +
        (c.labels.length > 1 ? `<td>${e(cmp.label)}</td>` : '') +
        `<td class="num">${w.n}${excl ? `<br><span class="ci">${e(excl)} dropped</span>` : ''}</td>` +
        `<td class="num">${fmt(cmp.medianDifference, digitsFor(cmp.metric))}</td><td class="num">${fmt(w.statistic, 1)}</td>` +
        `<td class="num">${fmtP(w.pValue)}</td><td class="num">${fmtP(padj)}</td><td class="num">${fmt(w.rankBiserial, 2)}</td>` +
        `<td>${w.method === 'exact' ? 'exact' : w.method === 'approx' ? 'normal approx.' : '—'}${w.warning ? `<br><span class="ci">${e(w.warning)}</span>` : ''}</td><td>${finding}</td></tr>`;
    }
    h += '</tbody></table>';
    h += `<p class="note">Two-sided Wilcoxon signed-rank test on per-case differences of cases scored by both models. Pairs with a NaN/±Inf value are dropped; zero differences are dropped before ranking (Wilcox). Exact null distribution when n ≤ 50 without ties or zeros, otherwise the normal approximation with tie-corrected variance and continuity correction. p-values Holm-adjusted over the ${comparisons.length} tests shown. r<sub>rb</sub>: matched-pairs rank-biserial correlation (positive: A larger).</p>`;
  } else {
    h += '<p class="note">Only one model: no paired comparison.</p>';
  }
  return `${h}</section>`;
}

function calibrationSection(c: Context): string {
  const cal = c.input.calibration;
  let h = '<section id="calibration"><h2>4. Calibration</h2>';
  if (!cal || Object.keys(cal).length === 0) return `${h}<p class="note">No calibration bins supplied.</p></section>`;
  const series = Object.entries(cal).map(([name, bins]) => ({ name, bins }));
  h += `<div class="grid"><figure class="plot">${calibrationPlot({ title: 'Reliability diagram (voxel-wise)', series })}</figure>`;
  h += '<table class="calibration-table"><thead><tr><th>Model</th><th class="num">ECE</th><th class="num">Samples</th></tr></thead><tbody>';
  for (const s of series) {
    const n = s.bins.count.reduce((a, b) => a + (b > 0 ? b : 0), 0);
    h += `<tr><td>${e(s.name)}</td><td class="num">${fmt(eceFromBins(s.bins) * 100, 2)}%</td><td class="num">${n.toLocaleString('en-US')}</td></tr>`;
  }
  h +=
    '</tbody></table></div><p class="note">Points on the dashed diagonal are perfectly calibrated; below it the model is over-confident. ECE = Σ<sub>b</sub> (n<sub>b</sub>/N)·|accuracy<sub>b</sub> − confidence<sub>b</sub>| over the supplied bins. The strip under the plot shows the share of samples per bin.</p>';
  return `${h}</section>`;
}

function subgroupSection(c: Context): string {
  const sub = c.input.subgroups;
  let h = '<section id="subgroups"><h2>6. Subgroup analysis</h2>';
  if (!sub || Object.keys(sub).length === 0) return `${h}<p class="note">No subgroup columns supplied.</p></section>`;
  const columns = c.input.subgroupColumns ?? [...new Set(Object.values(sub).flatMap((r) => Object.keys(r)))];
  const name = metricDisplayName(c.primary);
  const d = digitsFor(c.primary);
  for (const col of columns) {
    const br = subgroupBreakdown(c.input.rows, sub, col, { metrics: [c.primary], bootstrap: c.boot, directions: c.input.directions });
    for (const label of c.labels) {
      h += `<h3>${e(col.replace(/_/g, ' '))}${c.labels.length > 1 ? ` · label ${e(label)}` : ''}</h3><div class="grid"><div>`;
      h += `<table class="subgroup-table" data-column="${e(col)}"><thead><tr><th>Group</th>`;
      for (const m of c.models) h += `<th class="num">${e(m)}</th>`;
      h += '</tr></thead><tbody>';
      for (const g of br.groups) {
        h += `<tr><td>${e(g)}</td>`;
        for (const m of c.models) {
          const r = br.rows.find((x) => x.model === m && String(x.label) === String(label) && x.group === g);
          h += r
            ? `<td class="num">${fmt(r.mean, d)} <span class="ci">[${fmt(r.ci.lower, d)}, ${fmt(r.ci.upper, d)}] n=${r.nFinite}${r.note ? `<sup class="fn" title="${e(r.note)}">*</sup>` : ''}</span></td>`
            : '<td class="num">—</td>';
        }
        h += '</tr>';
      }
      h += `<tr class="gap"><td><em>Gap best − worst</em></td>`;
      for (const m of c.models) {
        const gap = br.gaps.find((x) => x.model === m && String(x.label) === String(label));
        h += gap
          ? `<td class="num"><strong>${fmt(gap.gap, d)}</strong><br><span class="ci">${e(gap.best.group)} vs ${e(gap.worst.group)}</span></td>`
          : '<td class="num">—</td>';
      }
      h += '</tr></tbody></table>';
      if (br.nCasesMissing)
        h += `<p class="note">${br.nCasesMissing} case(s) without a value for “${e(col)}” are shown as a separate group and left out of the gap.</p>`;
      h += '</div>';
      const groups = br.groups;
      const series = c.models.map((m) => {
        const rs = groups.map((g) => br.rows.find((x) => x.model === m && String(x.label) === String(label) && x.group === g));
        return {
          name: m,
          values: rs.map((r) => r?.mean ?? Number.NaN),
          intervals: rs.map((r) => (r ? ([r.ci.lower, r.ci.upper] as [number, number]) : undefined)),
        };
      });
      h += `<figure class="plot">${barChart({ title: `Mean ${name} by ${col.replace(/_/g, ' ')}`, yLabel: name, categories: groups, series })}<figcaption>Bars: mean; whiskers: 95% bootstrap CI.</figcaption></figure></div>`;
    }
  }
  h += `<p class="note">Subgroup means use the primary metric (${e(name)}); non-finite values are excluded as in the summary (marked *). Small subgroups give wide intervals: read gaps together with their CIs.</p>`;
  return `${h}</section>`;
}

async function overlaySection(c: Context): Promise<string> {
  let h = '<section id="overlays"><h2>7. Qualitative results</h2>';
  let images: OverlayImage[] = [...(c.input.overlays ?? [])];
  if (images.length === 0 && c.input.renderOverlay) {
    for (const model of c.models) {
      for (const label of c.labels.slice(0, 1)) {
        for (const sel of pickBestMedianWorst(c.input.rows, model, label, c.primary, c.dir(c.primary))) {
          images.push({ ...sel, png: await c.input.renderOverlay(sel) });
        }
      }
    }
  }
  if (images.length === 0) return `${h}<p class="note">No overlays supplied.</p></section>`;
  h += `<p class="note">Slice through the largest reference area. Outlines:<span class="swatch" style="background:#56B4E9"></span>reference<span class="swatch" style="background:#E69F00"></span>prediction. Cases ranked by ${e(metricDisplayName(c.primary))} per model.</p>`;
  h += '<div class="overlays"><div></div><div><strong>Best</strong></div><div><strong>Median</strong></div><div><strong>Worst</strong></div>';
  const modelsWithImages = c.models.filter((m) => images.some((i) => i.model === m));
  for (const model of modelsWithImages) {
    h += `<div class="model">${e(model)}</div>`;
    for (const rank of ['best', 'median', 'worst'] as OverlayRank[]) {
      const img = images.find((i) => i.model === model && i.rank === rank);
      if (!img) {
        h += '<div class="note">—</div>';
        continue;
      }
      const caption = img.caption ?? `${img.case} · ${metricDisplayName(img.metric)} ${fmt(img.value, digitsFor(img.metric))}`;
      h += `<figure><img alt="${e(`${model} ${rank} case ${img.case}`)}" src="data:image/png;base64,${Buffer.from(img.png).toString('base64')}"><figcaption>${e(caption)}</figcaption></figure>`;
    }
  }
  return `${h}</div></section>`;
}

function timingSection(c: Context): string {
  let h = '<section id="timing"><h2>8. Inference time and hardware</h2>';
  if (c.times.size === 0) return `${h}<p class="note">No inference times supplied.</p></section>`;
  const hw = c.input.hardware ?? hardwareInfo();
  h +=
    '<table class="timing-table"><thead><tr><th>Model</th><th class="num">Cases</th><th class="num">Median</th><th class="num">p95</th><th class="num">Mean</th><th class="num">Max</th><th class="num">Threads</th></tr></thead><tbody>';
  for (const [model, t] of c.times) {
    h += `<tr><td>${e(model)}</td><td class="num">${t.n}${t.nInvalid ? ` <span class="ci">(${t.nInvalid} invalid)</span>` : ''}</td><td class="num">${fmtMs(t.medianMs)}</td><td class="num">${fmtMs(t.p95Ms)}</td><td class="num">${fmtMs(t.meanMs)}</td><td class="num">${fmtMs(t.maxMs)}</td><td class="num">${t.threads ?? 'not recorded'}</td></tr>`;
  }
  h += '</tbody></table>';
  h += `<p class="note">Hardware: ${e(hw.cpuModel)} · ${hw.cores} logical cores · ${hw.totalMemoryGiB} GiB RAM · ${e(hw.platform)}/${e(hw.arch)} · Node ${e(hw.node)}. Per-case wall time of the whole inference (percentiles by linear interpolation).</p>`;
  return `${h}</section>`;
}

function casesSection(c: Context): string {
  let h = '<section id="cases"><h2>9. Per-case results and model cards</h2>';
  const cards = c.models.map((m) => c.info.get(m)).filter((i): i is ModelInfo => !!i?.modelCardHref);
  if (cards.length) {
    h += '<h3>Model cards</h3><ul class="model-cards">';
    for (const i of cards) h += `<li><a href="${e(i.modelCardHref)}">${e(i.name)}</a></li>`;
    h += '</ul>';
  }
  const header = ['model', 'case', 'label', ...c.metrics];
  const csv = toCsv(
    header,
    c.input.rows.map((r) => header.map((k) => (k === 'model' || k === 'case' || k === 'label' ? r[k] : metricValue(r, k)))),
  );
  h += `<p><a download="per-case-metrics.csv" href="data:text/csv;charset=utf-8,${encodeURIComponent(csv)}">Download per-case metrics (CSV)</a></p>`;
  h += `<details><summary>Per-case ${e(metricDisplayName(c.primary))} table</summary><table class="cases-table"><thead><tr><th>Case</th>${c.labels.length > 1 ? '<th>Label</th>' : ''}`;
  for (const m of c.models) h += `<th class="num">${e(m)}</th>`;
  h += '</tr></thead><tbody>';
  const d = digitsFor(c.primary);
  for (const id of distinct(c.input.rows, 'case')) {
    for (const label of c.labels) {
      h += `<tr><td>${e(id)}</td>${c.labels.length > 1 ? `<td>${e(label)}</td>` : ''}`;
      for (const m of c.models) {
        const r = c.input.rows.find((x) => x.model === m && x.case === id && String(x.label) === String(label));
        const v = r ? metricValue(r, c.primary) : undefined;
        h += `<td class="num">${v === undefined ? '—' : Number.isNaN(v) ? 'NaN' : fmt(v, d)}</td>`;
      }
      h += '</tr>';
    }
  }
  return `${h}</tbody></table></details></section>`;
}

/** Per case of a model: the metric averaged over the case's labels with a finite value. */
function caseQuality(rows: readonly MetricRow[], model: string, metric: string): Map<string, number> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const r of rows) {
    if (r.model !== model) continue;
    const v = metricValue(r, metric);
    if (v === undefined || !Number.isFinite(v)) continue;
    const s = sums.get(r.case) ?? { sum: 0, n: 0 };
    s.sum += v;
    s.n++;
    sums.set(r.case, s);
  }
  return new Map([...sums].map(([k, s]) => [k, s.sum / s.n]));
}

// ---------------------------------------------------------------- entry points

/** Build the report HTML (a single string). */
export async function renderReportHtml(input: ReportInput): Promise<string> {
  if (!input || !Array.isArray(input.rows) || input.rows.length === 0) {
    throw new MedsegStatsError('NO_DATA', 'report needs at least one metric row');
  }
  const rows = input.rows;
  const metrics = input.plotMetrics ?? metricColumns(rows);
  if (metrics.length === 0) throw new MedsegStatsError('NO_DATA', 'metric rows hold no numeric metric columns');
  const modelOrder = [...new Set([...(input.models ?? []).map((m) => m.name), ...distinct(rows, 'model')])].filter((m) => rows.some((r) => r.model === m));
  const primary = input.primaryMetric ?? (metrics.includes('dice') ? 'dice' : metrics[0]!);
  const summaryMetrics =
    input.summaryMetrics ??
    (['dice', 'iou', 'hd95'].filter((m) => metrics.includes(m)).length ? ['dice', 'iou', 'hd95'].filter((m) => metrics.includes(m)) : metrics.slice(0, 3));
  const boot = input.bootstrap ?? {};
  const info = new Map((input.models ?? []).map((m) => [m.name, m]));
  const times = new Map<string, TimeSummary>();
  const hw = input.hardware ?? hardwareInfo();
  for (const m of modelOrder) {
    const t = info.get(m)?.inferenceTimesMs;
    if (t) times.set(m, summarizeInferenceTimes(t, { threads: info.get(m)?.threads, hardware: hw }));
  }
  const c: Context = {
    input,
    models: modelOrder,
    labels: distinct(rows, 'label'),
    info,
    metrics,
    summaryMetrics,
    primary,
    agg: aggregate(rows, { metrics: [...new Set([...metrics, ...summaryMetrics])], bootstrap: boot }),
    times,
    dir: (m) => metricDirection(m, input.directions),
    boot,
  };
  const comparisons: PairedComparison[] = [];
  for (const label of c.labels) {
    for (const metric of summaryMetrics) {
      for (let i = 0; i < modelOrder.length; i++) {
        for (let j = i + 1; j < modelOrder.length; j++) {
          try {
            comparisons.push(comparePaired(rows, modelOrder[i]!, modelOrder[j]!, label, metric, { directions: input.directions }));
          } catch (err) {
            if (!(err instanceof MedsegStatsError && err.code === 'UNPAIRED')) throw err;
          }
        }
      }
    }
  }
  holmAdjust(comparisons.map((x) => x.wilcoxon.pValue)).forEach((p, i) => (comparisons[i]!.pAdjusted = p));

  // Failures are judged by Dice where the rows have it (a higher-is-better overlap), else the primary metric.
  const qualityMetric = metrics.includes('dice') ? 'dice' : primary;
  const when = (input.generatedAt ?? new Date()).toISOString().replace('T', ' ').slice(0, 16);
  const nCases = distinct(rows, 'case').length;
  const toc = [
    ['summary', 'Summary'],
    ['distributions', 'Distributions'],
    ['paired', 'Paired tests'],
    ['calibration', 'Calibration'],
    ['confidence', 'Uncertainty & explanations'],
    ['subgroups', 'Subgroups'],
    ['overlays', 'Qualitative'],
    ['timing', 'Timing'],
    ['cases', 'Per-case & model cards'],
  ];
  const body = [
    summarySection(c),
    distributionSection(c),
    comparisonSection(c, comparisons),
    calibrationSection(c),
    confidenceSection({
      models: c.models,
      uncertainty: input.uncertainty ?? [],
      explanations: input.explanations ?? [],
      quality: (m) => caseQuality(rows, m, qualityMetric),
      metricName: metricDisplayName(qualityMetric),
      failureBelow: input.failureBelow ?? 0.8,
      heading: '5. Uncertainty and explanations',
    }),
    subgroupSection(c),
    await overlaySection(c),
    timingSection(c),
    casesSection(c),
  ].join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="medseg eval/report">
<title>${e(input.title)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>${e(input.title)}</h1>${input.subtitle ? `<div class="sub">${e(input.subtitle)}</div>` : ''}
<div class="meta">${input.dataset ? `Dataset: ${e(input.dataset)} · ` : ''}${modelOrder.length} models · ${nCases} cases · ${c.labels.length} label${c.labels.length > 1 ? 's' : ''} · generated ${e(when)} UTC</div></header>
<main>
<nav class="toc">${toc.map(([id, t]) => `<a href="#${id}">${t}</a>`).join('')}</nav>
<div class="disclaimer"><strong>Research use only.</strong> ${e(RESEARCH_DISCLAIMER.replace(/^For research use only\. /, ''))}</div>
${body}
</main>
<footer>Generated by medseg. Statistics: bootstrap CIs (percentile), Wilcoxon signed-rank with Holm adjustment; non-finite per-case values are reported and excluded, never imputed. ${e(RESEARCH_DISCLAIMER)}</footer>
</body></html>
`;
}

/** Write the report to outPath (atomically) and return the path. */
export async function writeReport(outPath: string, input: ReportInput): Promise<string> {
  const html = await renderReportHtml(input);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileAtomicSync(outPath, html);
  return outPath;
}
