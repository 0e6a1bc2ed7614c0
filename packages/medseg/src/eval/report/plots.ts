/**
 * Static SVG plots for evaluation reports: box plots, paired scatter,
 * reliability (calibration) curves and grouped bar charts.
 *
 * Hand-written rather than vega/vega-lite: vega pulls ~27 sub-packages plus d3
 * modules (several MB) and, without node-canvas, measures text approximately
 * anyway. Four chart types over a few hundred points are a few hundred lines
 * of plain SVG, render identically in Node, browsers and offline HTML, and let
 * us control escaping of every user-supplied string (model names, case ids).
 */
import { eceFromBins, type CalibrationBins } from '../probabilistic.ts';

/** Escape text for XML/HTML element content and attribute values. */
export function escapeXml(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Okabe–Ito palette: distinguishable with the common colour-vision deficiencies. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

export function seriesColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

const FONT = 'font-family="\'Helvetica Neue\', Helvetica, Arial, sans-serif"';
const AXIS = '#444';
const GRID = '#e3e6ea';

export interface PlotSize {
  width?: number;
  height?: number;
}

// ---------------------------------------------------------------- scales

interface Scale {
  (v: number): number;
  ticks: number[];
  domain: [number, number];
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r >= 5 ? 10 : r >= 2 ? 5 : r >= 1 ? 2 : 1) * mag;
}

/** Linear scale with a domain widened to round tick values. */
function linearScale(lo: number, hi: number, r0: number, r1: number, count = 5, nice = true): Scale {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-12) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 0.5;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  if (nice) {
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
  }
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  const f = ((v: number) => r0 + ((v - lo) / (hi - lo)) * (r1 - r0)) as Scale;
  f.ticks = ticks;
  f.domain = [lo, hi];
  return f;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

/** Compact number for labels (3 significant digits, no trailing zeros). */
export function fmtNum(v: number, digits = 3): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '−Inf';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(digits - 1);
  return a >= 100 ? v.toFixed(1) : v.toFixed(Math.max(0, digits - (a >= 10 ? 2 : 1)));
}

/** Rough text width for a sans-serif font, used only to decide layout. */
function textWidth(s: string, size: number): number {
  return s.length * size * 0.56;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

// ---------------------------------------------------------------- frame

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function open(kind: string, title: string, f: Frame, desc?: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="medseg-plot" data-plot="${escapeXml(kind)}" role="img" ` +
    `width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" ${FONT} font-size="12">` +
    `<title>${escapeXml(title)}</title>` +
    (desc ? `<desc>${escapeXml(desc)}</desc>` : '') +
    `<rect width="100%" height="100%" fill="#fff"/>` +
    `<text x="${f.left}" y="20" font-size="14" font-weight="600" fill="#1a1a1a">${escapeXml(title)}</text>`
  );
}

function yAxis(f: Frame, y: Scale, label: string): string {
  let s = '';
  for (const t of y.ticks) {
    const py = y(t).toFixed(1);
    s += `<line x1="${f.left}" x2="${f.width - f.right}" y1="${py}" y2="${py}" stroke="${GRID}"/>`;
    s += `<text x="${f.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle" fill="${AXIS}">${escapeXml(fmtTick(t))}</text>`;
  }
  s += `<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.height - f.bottom}" stroke="${AXIS}"/>`;
  const cy = (f.top + f.height - f.bottom) / 2;
  s += `<text transform="translate(16 ${cy.toFixed(1)}) rotate(-90)" text-anchor="middle" fill="#222">${escapeXml(label)}</text>`;
  return s;
}

function xAxisLinear(f: Frame, x: Scale, label: string): string {
  let s = '';
  const by = f.height - f.bottom;
  for (const t of x.ticks) {
    const px = x(t).toFixed(1);
    s += `<line x1="${px}" x2="${px}" y1="${f.top}" y2="${by}" stroke="${GRID}"/>`;
    s += `<text x="${px}" y="${by + 16}" text-anchor="middle" fill="${AXIS}">${escapeXml(fmtTick(t))}</text>`;
  }
  s += `<line x1="${f.left}" x2="${f.width - f.right}" y1="${by}" y2="${by}" stroke="${AXIS}"/>`;
  s += `<text x="${((f.left + f.width - f.right) / 2).toFixed(1)}" y="${by + 34}" text-anchor="middle" fill="#222">${escapeXml(label)}</text>`;
  return s;
}

/** Split a label into at most maxLines lines of about maxChars, breaking at spaces where possible. */
export function wrapLabel(label: string, maxChars: number, maxLines = 3): string[] {
  const words = label.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (!cur) cur = w;
    else if (`${cur} ${w}`.length <= maxChars) cur += ` ${w}`;
    else {
      lines.push(cur);
      cur = w;
    }
  }
  if (cur) lines.push(cur);
  const out = lines.flatMap((l) => (l.length > maxChars ? l.match(new RegExp(`.{1,${maxChars}}`, 'g'))! : [l]));
  if (out.length > maxLines) {
    out.length = maxLines;
    out[maxLines - 1] = truncate(`${out[maxLines - 1]}…`, maxChars);
  }
  return out.length ? out : [''];
}

function bandChars(band: number): number {
  return Math.max(6, Math.floor((band - 8) / (12 * 0.56)));
}

/** Lines needed under a band axis for these labels. */
function bandLines(labels: readonly string[], band: number): number {
  return Math.max(1, ...labels.map((l) => wrapLabel(l, bandChars(band)).length));
}

/** Category labels under a band axis, wrapped onto up to three lines, with an optional grey sub-label. */
function xAxisBands(f: Frame, centers: number[], band: number, labels: string[], sub?: string[]): string {
  const by = f.height - f.bottom;
  let s = `<line x1="${f.left}" x2="${f.width - f.right}" y1="${by}" y2="${by}" stroke="${AXIS}"/>`;
  const lines = bandLines(labels, band);
  labels.forEach((l, i) => {
    const cx = centers[i]!.toFixed(1);
    const parts = wrapLabel(l, bandChars(band));
    s += `<text x="${cx}" y="${by + 16}" text-anchor="middle" fill="#222"><title>${escapeXml(l)}</title>`;
    parts.forEach((p, k) => (s += `<tspan x="${cx}" dy="${k === 0 ? 0 : 14}">${escapeXml(p)}</tspan>`));
    s += '</text>';
    if (sub?.[i]) {
      s += `<text x="${cx}" y="${by + 16 + lines * 14}" text-anchor="middle" font-size="10.5" fill="#666">${escapeXml(sub[i])}</text>`;
    }
  });
  return s;
}

/** Legend entries in equal-width columns from (x0, y0), wrapping within maxWidth (text widths are only estimated, so a grid stays tidy). */
function legendRows(names: readonly string[], x0: number, y0: number, maxWidth: number, suffix?: (i: number) => string): { svg: string; rows: number } {
  const texts = names.map((n, i) => truncate(n, 30) + (suffix ? suffix(i) : ''));
  const colW = Math.max(0, ...texts.map((t) => textWidth(t, 11) + 24));
  const perRow = Math.max(1, Math.floor(maxWidth / Math.max(1, colW)));
  let s = '';
  texts.forEach((text, i) => {
    const x = x0 + (i % perRow) * colW;
    const y = y0 + Math.floor(i / perRow) * 16;
    s += `<rect x="${x.toFixed(1)}" y="${y - 9}" width="10" height="10" rx="2" fill="${seriesColor(i)}"/>`;
    s += `<text x="${(x + 14).toFixed(1)}" y="${y}" font-size="11" fill="#333">${escapeXml(text)}</text>`;
  });
  return { svg: s, rows: Math.ceil(texts.length / perRow) };
}

/** Rows a legend will need (same layout rule as legendRows). */
function legendRowCount(names: readonly string[], maxWidth: number, suffix?: (i: number) => string): number {
  return legendRows(names, 0, 0, maxWidth, suffix).rows;
}

// ---------------------------------------------------------------- box plot

export interface BoxSeries {
  name: string;
  /** Raw per-case values; NaN/±Inf are counted under the box, not drawn. */
  values: readonly number[];
}

export interface BoxPlotSpec extends PlotSize {
  title: string;
  yLabel: string;
  series: readonly BoxSeries[];
  /** Clamp the y axis (e.g. [0, 1] for Dice). */
  yDomain?: [number, number];
}

function tukey(sorted: number[]) {
  const q = (p: number) => {
    const h = (sorted.length - 1) * p;
    const lo = Math.floor(h);
    return sorted[lo]! + (h - lo) * (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!);
  };
  const q1 = q(0.25);
  const q3 = q(0.75);
  const iqr = q3 - q1;
  const inside = sorted.filter((v) => v >= q1 - 1.5 * iqr && v <= q3 + 1.5 * iqr);
  return { q1, med: q(0.5), q3, lo: inside[0] ?? q1, hi: inside[inside.length - 1] ?? q3 };
}

/** Box plot per series (Tukey whiskers at 1.5 IQR), every case drawn as a jittered dot, mean as a diamond. */
export function boxPlot(spec: BoxPlotSpec): string {
  const width = spec.width ?? Math.max(420, 110 + spec.series.length * 110);
  const height = spec.height ?? 340;
  const bandW = (width - 62 - 16) / Math.max(1, spec.series.length);
  const lines = bandLines(
    spec.series.map((x) => x.name),
    bandW,
  );
  const f: Frame = { width, height: height + (lines - 1) * 14, left: 62, right: 16, top: 34, bottom: 38 + lines * 14 };
  const finite = spec.series.map((s) => s.values.filter(Number.isFinite).sort((a, b) => a - b));
  const all = finite.flat();
  const [dlo, dhi] = spec.yDomain ?? [Math.min(...all), Math.max(...all)];
  const y = linearScale(dlo, dhi, f.height - f.bottom, f.top, 5, spec.yDomain === undefined);
  const band = bandW;
  const centers = spec.series.map((_, i) => f.left + band * (i + 0.5));
  let s = open('box', spec.title, f, `Box plot of ${spec.yLabel} per model`);
  s += yAxis(f, y, spec.yLabel);
  const subs: string[] = [];
  spec.series.forEach((ser, i) => {
    const v = finite[i]!;
    const nan = ser.values.filter(Number.isNaN).length;
    const pinf = ser.values.filter((x) => x === Infinity).length;
    const ninf = ser.values.filter((x) => x === -Infinity).length;
    const extra = [nan ? `${nan} NaN` : '', pinf ? `${pinf} +Inf` : '', ninf ? `${ninf} −Inf` : ''].filter(Boolean).join(', ');
    subs.push(`n=${v.length}${extra ? ` · ${extra}` : ''}`);
    const cx = centers[i]!;
    const bw = Math.min(56, band * 0.5);
    const col = seriesColor(i);
    s += `<g class="series" data-series="${escapeXml(ser.name)}">`;
    if (v.length > 0) {
      const t = tukey(v);
      const yy = (u: number) => y(Math.min(y.domain[1], Math.max(y.domain[0], u))).toFixed(1);
      s += `<line x1="${cx}" x2="${cx}" y1="${yy(t.lo)}" y2="${yy(t.q1)}" stroke="${AXIS}"/>`;
      s += `<line x1="${cx}" x2="${cx}" y1="${yy(t.q3)}" y2="${yy(t.hi)}" stroke="${AXIS}"/>`;
      for (const w of [t.lo, t.hi]) s += `<line x1="${cx - bw / 4}" x2="${cx + bw / 4}" y1="${yy(w)}" y2="${yy(w)}" stroke="${AXIS}"/>`;
      const top = y(Math.min(y.domain[1], t.q3));
      const bot = y(Math.max(y.domain[0], t.q1));
      s += `<rect x="${(cx - bw / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(1, bot - top).toFixed(1)}" fill="${col}" fill-opacity="0.22" stroke="${col}" stroke-width="1.5"/>`;
      s += `<line x1="${(cx - bw / 2).toFixed(1)}" x2="${(cx + bw / 2).toFixed(1)}" y1="${yy(t.med)}" y2="${yy(t.med)}" stroke="${col}" stroke-width="2.5"/>`;
      // jittered per-case dots: deterministic golden-ratio offsets keep the image stable between runs
      v.forEach((val, k) => {
        const jx = cx + (((k * 0.618034) % 1) - 0.5) * bw * 0.7;
        const outlier = val < t.lo || val > t.hi;
        s += `<circle cx="${jx.toFixed(1)}" cy="${yy(val)}" r="${outlier ? 3 : 2.2}" fill="${outlier ? '#fff' : col}" fill-opacity="${outlier ? 1 : 0.55}" stroke="${col}" stroke-width="${outlier ? 1.2 : 0}"/>`;
      });
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      const my = Number(yy(m));
      s += `<path d="M${cx} ${my - 5}L${cx + 5} ${my}L${cx} ${my + 5}L${cx - 5} ${my}Z" fill="#fff" stroke="#222" stroke-width="1.2"><title>mean ${escapeXml(fmtNum(m))}</title></path>`;
    } else {
      s += `<text x="${cx}" y="${((f.top + f.height - f.bottom) / 2).toFixed(1)}" text-anchor="middle" fill="#999">no finite values</text>`;
    }
    s += '</g>';
  });
  s += xAxisBands(
    f,
    centers,
    band,
    spec.series.map((x) => x.name),
    subs,
  );
  return `${s}</svg>`;
}

// ---------------------------------------------------------------- paired scatter

export interface ScatterPoint {
  x: number;
  y: number;
  id: string;
}

export interface ScatterSpec extends PlotSize {
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** Same domain on both axes (default) with the y = x line. */
  domain?: [number, number];
}

/** Per-case paired scatter of two models with the identity line; points above it favour the y model. */
export function pairedScatter(spec: ScatterSpec): string {
  const width = spec.width ?? 380;
  const height = spec.height ?? 380;
  const f: Frame = { width, height, left: 62, right: 18, top: 34, bottom: 50 };
  const pts = spec.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const dropped = spec.points.length - pts.length;
  const vals = pts.flatMap((p) => [p.x, p.y]);
  const [lo, hi] = spec.domain ?? [Math.min(...vals), Math.max(...vals)];
  const x = linearScale(lo, hi, f.left, width - f.right, 5, spec.domain === undefined);
  const y = linearScale(x.domain[0], x.domain[1], height - f.bottom, f.top, 5, false);
  let s = open('scatter', spec.title, f, `Paired per-case scatter: ${spec.xLabel} against ${spec.yLabel}`);
  s += yAxis(f, y, spec.yLabel) + xAxisLinear(f, x, spec.xLabel);
  const [d0, d1] = x.domain;
  s += `<line class="identity" x1="${x(d0).toFixed(1)}" y1="${y(d0).toFixed(1)}" x2="${x(d1).toFixed(1)}" y2="${y(d1).toFixed(1)}" stroke="#888" stroke-dasharray="5 4"/>`;
  for (const p of pts) {
    const col = p.y > p.x ? seriesColor(1) : p.y < p.x ? seriesColor(0) : '#777';
    s += `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3.6" fill="${col}" fill-opacity="0.75" stroke="#fff" stroke-width="0.6"><title>${escapeXml(`${p.id}: ${fmtNum(p.x)} vs ${fmtNum(p.y)}`)}</title></circle>`;
  }
  if (dropped) {
    s += `<text x="${width - f.right}" y="${f.top + 12}" text-anchor="end" font-size="10.5" fill="#666">${dropped} case${dropped > 1 ? 's' : ''} with NaN/Inf not shown</text>`;
  }
  return `${s}</svg>`;
}

// ---------------------------------------------------------------- uncertainty against quality

export interface FlaggedPoint extends ScatterPoint {
  /** Flagged for review by the model's triage rule. */
  flagged: boolean;
}

export interface TriageScatterSpec extends PlotSize {
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly FlaggedPoint[];
  /** Quality below this counts as a failure: a dashed horizontal line. */
  failureBelow?: number;
  /** The review threshold on the score: a dashed vertical line. */
  threshold?: number;
}

/**
 * Per-case uncertainty score (x) against a quality metric (y), each axis on
 * its own scale; flagged cases are filled, the others hollow. A useful score
 * puts the failures (below the horizontal line) right of the threshold.
 */
export function triageScatter(spec: TriageScatterSpec): string {
  const width = spec.width ?? 380;
  const height = spec.height ?? 340;
  const f: Frame = { width, height, left: 62, right: 18, top: 34, bottom: 50 };
  const pts = spec.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = pts.map((p) => p.x).concat(spec.threshold !== undefined && Number.isFinite(spec.threshold) ? [spec.threshold] : []);
  const ys = pts.map((p) => p.y).concat(spec.failureBelow !== undefined ? [spec.failureBelow] : []);
  const x = linearScale(Math.min(...xs), Math.max(...xs), f.left, width - f.right);
  const y = linearScale(Math.min(...ys), Math.max(...ys), height - f.bottom, f.top);
  let s = open('triage', spec.title, f, `Per-case ${spec.xLabel} against ${spec.yLabel}; filled points are flagged for review`);
  s += yAxis(f, y, spec.yLabel) + xAxisLinear(f, x, spec.xLabel);
  if (spec.failureBelow !== undefined) {
    const py = y(spec.failureBelow).toFixed(1);
    s += `<line class="failure-bar" x1="${f.left}" x2="${width - f.right}" y1="${py}" y2="${py}" stroke="#c0392b" stroke-dasharray="5 4"/>`;
  }
  if (spec.threshold !== undefined && Number.isFinite(spec.threshold)) {
    const px = x(spec.threshold).toFixed(1);
    s += `<line class="review-threshold" x1="${px}" x2="${px}" y1="${f.top}" y2="${height - f.bottom}" stroke="#555" stroke-dasharray="2 3"/>`;
  }
  for (const p of pts) {
    const fill = p.flagged ? seriesColor(1) : '#fff';
    s += `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3.8" fill="${fill}" stroke="${seriesColor(1)}" stroke-width="1.2"><title>${escapeXml(`${p.id}: ${fmtNum(p.x)}, ${fmtNum(p.y)}${p.flagged ? ' (flagged)' : ''}`)}</title></circle>`;
  }
  return `${s}</svg>`;
}

// ---------------------------------------------------------------- calibration

export interface CalibrationSpec extends PlotSize {
  title: string;
  series: readonly { name: string; bins: CalibrationBins }[];
}

/** Reliability diagram: accuracy against confidence per model, the diagonal, and a bin-count strip below. */
export function calibrationPlot(spec: CalibrationSpec): string {
  const width = spec.width ?? 480;
  const strip = 70;
  const legendWidth = width - 62 - 18;
  const suffix = (i: number) => ` (ECE ${fmtNum(eceFromBins(spec.series[i]!.bins) * 100, 2)}%)`;
  const names = spec.series.map((x) => x.name);
  const legendH = 16 * legendRowCount(names, legendWidth, suffix);
  const height = (spec.height ?? 440) + legendH;
  const f: Frame = { width, height, left: 62, right: 18, top: 40 + legendH, bottom: 50 + strip + 12 };
  const x = linearScale(0, 1, f.left, width - f.right, 5, false);
  const y = linearScale(0, 1, height - f.bottom, f.top, 5, false);
  let s = open('calibration', spec.title, f, 'Reliability diagram: observed accuracy against predicted confidence');
  s += yAxis(f, y, 'Observed frequency');
  s += `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#888" stroke-dasharray="5 4"/>`;
  s += legendRows(names, f.left, 40, legendWidth, suffix).svg;
  const maxFrac = Math.max(
    1e-9,
    ...spec.series.flatMap((ser) => {
      const tot = ser.bins.count.reduce((a, b) => a + (b > 0 ? b : 0), 0);
      return ser.bins.count.map((c) => (tot > 0 && c > 0 ? c / tot : 0));
    }),
  );
  const stripTop = height - f.bottom + 12;
  const stripBottom = stripTop + strip;
  spec.series.forEach((ser, i) => {
    const col = seriesColor(i);
    const { confidence, accuracy, count } = ser.bins;
    const pts: string[] = [];
    for (let k = 0; k < confidence.length; k++) {
      if (!(count[k]! > 0) || !Number.isFinite(confidence[k]!) || !Number.isFinite(accuracy[k]!)) continue;
      pts.push(`${x(confidence[k]!).toFixed(1)},${y(accuracy[k]!).toFixed(1)}`);
    }
    s += `<g class="series" data-series="${escapeXml(ser.name)}">`;
    if (pts.length) s += `<polyline points="${pts.join(' ')}" fill="none" stroke="${col}" stroke-width="2"/>`;
    for (const p of pts) {
      const [px, py] = p.split(',');
      s += `<circle cx="${px}" cy="${py}" r="3" fill="${col}"/>`;
    }
    // count strip: thin bars per bin, series side by side
    const tot = count.reduce((a, b) => a + (b > 0 ? b : 0), 0);
    const bw = Math.max(1.5, (width - f.left - f.right) / Math.max(1, confidence.length) / (spec.series.length + 1));
    for (let k = 0; k < confidence.length; k++) {
      if (!(count[k]! > 0) || !Number.isFinite(confidence[k]!)) continue;
      const h = (count[k]! / tot / maxFrac) * (strip - 4);
      const bx = x(confidence[k]!) + (i - spec.series.length / 2) * bw;
      s += `<rect x="${bx.toFixed(1)}" y="${(stripBottom - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${col}" fill-opacity="0.7"/>`;
    }
    s += '</g>';
  });
  // x axis sits under the count strip
  const stripFrame: Frame = { ...f, bottom: height - stripBottom };
  s += `<line x1="${f.left}" x2="${width - f.right}" y1="${height - f.bottom}" y2="${height - f.bottom}" stroke="${AXIS}"/>`;
  s += `<text x="${f.left - 6}" y="${(stripTop + stripBottom) / 2}" text-anchor="end" font-size="10.5" fill="#666">bin share</text>`;
  s += xAxisLinear(stripFrame, x, 'Predicted confidence');
  return `${s}</svg>`;
}

// ---------------------------------------------------------------- bars

export interface BarSeries {
  name: string;
  values: readonly number[];
  /** Optional [lower, upper] per category (e.g. bootstrap CI). */
  intervals?: readonly ([number, number] | undefined)[];
}

export interface BarChartSpec extends PlotSize {
  title: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly BarSeries[];
  yDomain?: [number, number];
}

/** Grouped bar chart (categories on x, one bar per series) with optional interval whiskers. */
export function barChart(spec: BarChartSpec): string {
  const width = spec.width ?? Math.max(480, 120 + spec.categories.length * (40 + 24 * spec.series.length));
  const bandW = (width - 62 - 16) / Math.max(1, spec.categories.length);
  const lines = bandLines(spec.categories, bandW);
  const names = spec.series.map((x) => x.name);
  const legendH = spec.series.length > 1 ? 16 * legendRowCount(names, width - 62 - 16) : 0;
  const height = (spec.height ?? 320) + legendH + (lines - 1) * 14;
  const f: Frame = { width, height, left: 62, right: 16, top: 36 + legendH, bottom: 30 + lines * 14 };
  const vals = spec.series.flatMap((s) => [...s.values, ...(s.intervals ?? []).flatMap((iv) => (iv ? [iv[0], iv[1]] : []))]).filter(Number.isFinite);
  const [lo, hi] = spec.yDomain ?? [Math.min(0, ...vals), Math.max(0, ...vals)];
  const y = linearScale(lo, hi, height - f.bottom, f.top, 5, spec.yDomain === undefined);
  const band = bandW;
  const centers = spec.categories.map((_, i) => f.left + band * (i + 0.5));
  const bw = Math.min(34, (band * 0.8) / Math.max(1, spec.series.length));
  let s = open('bar', spec.title, f, `Bar chart of ${spec.yLabel}`);
  s += yAxis(f, y, spec.yLabel);
  if (spec.series.length > 1) s += legendRows(names, f.left, 40, width - f.left - f.right).svg;
  const clampY = (v: number) => y(Math.min(y.domain[1], Math.max(y.domain[0], v)));
  const base = clampY(0);
  spec.series.forEach((ser, si) => {
    s += `<g class="series" data-series="${escapeXml(ser.name)}">`;
    spec.categories.forEach((cat, ci) => {
      const v = ser.values[ci];
      const bx = centers[ci]! - (spec.series.length * bw) / 2 + si * bw;
      if (v === undefined || !Number.isFinite(v)) {
        s += `<text x="${(bx + bw / 2).toFixed(1)}" y="${(base - 4).toFixed(1)}" text-anchor="middle" font-size="9" fill="#999">n/a</text>`;
        return;
      }
      const top = Math.min(base, clampY(v));
      const h = Math.abs(clampY(v) - base);
      s += `<rect x="${(bx + 1).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${Math.max(0.5, h).toFixed(1)}" fill="${seriesColor(si)}" fill-opacity="0.85"><title>${escapeXml(`${ser.name} · ${cat}: ${fmtNum(v)}`)}</title></rect>`;
      const iv = ser.intervals?.[ci];
      if (iv && Number.isFinite(iv[0]) && Number.isFinite(iv[1])) {
        const cx = (bx + bw / 2).toFixed(1);
        s += `<line x1="${cx}" x2="${cx}" y1="${clampY(iv[0]).toFixed(1)}" y2="${clampY(iv[1]).toFixed(1)}" stroke="#222"/>`;
        for (const e of iv)
          s += `<line x1="${(bx + bw / 2 - 3).toFixed(1)}" x2="${(bx + bw / 2 + 3).toFixed(1)}" y1="${clampY(e).toFixed(1)}" y2="${clampY(e).toFixed(1)}" stroke="#222"/>`;
      }
    });
    s += '</g>';
  });
  s += xAxisBands(f, centers, band, [...spec.categories]);
  return `${s}</svg>`;
}
