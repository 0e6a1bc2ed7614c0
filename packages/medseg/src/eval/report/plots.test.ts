import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { eceFromBins } from '../probabilistic.ts';
import { barChart, boxPlot, calibrationPlot, escapeXml, pairedScatter, wrapLabel } from './plots.ts';
import { seededRandom } from '../../util/random.ts';
import { runPythonJson } from '../../testing/python.ts';

const REF = fileURLToPath(new URL('./plots_ref.py', import.meta.url));
const EVIL = `<script>alert("x")</script> & 'q' U-Net`;

function pyRef(req: unknown): any[] {
  return runPythonJson([REF], req);
}

/** JSON turns NaN/Inf into null; the reference drops those as non-finite anyway. */
const jsonable = (v: readonly number[]) => v.map((x) => (Number.isFinite(x) ? x : null));

test('SVG plots are well-formed XML, escape every user string, and place data where the axes say', () => {
  const rand = seededRandom(9);
  const series = [0.88, 0.8, 0.84].map((base, i) => ({
    name: i === 1 ? EVIL : `Model ${i}`,
    values: [...Array.from({ length: 30 }, () => base - 0.2 * rand() ** 3), ...(i === 2 ? [Number.NaN, Number.POSITIVE_INFINITY] : [])],
  }));
  const box = boxPlot({ title: `Dice ${EVIL}`, yLabel: 'Dice', series });
  const pts = Array.from({ length: 25 }, (_, k) => ({ id: `case<${k}>`, x: 0.6 + 0.3 * rand(), y: 0.6 + 0.3 * rand() }));
  const scatter = pairedScatter({ title: 'Paired', xLabel: 'A', yLabel: EVIL, points: [...pts, { id: 'nan', x: Number.NaN, y: 0.5 }] });
  const bins = [0.02, 0.08].map((oc) => ({
    confidence: Array.from({ length: 10 }, (_, b) => (b + 0.5) / 10),
    accuracy: Array.from({ length: 10 }, (_, b) => Math.min(1, Math.max(0, (b + 0.5) / 10 - oc * ((b + 0.5) / 10 - 0.5) * 2))),
    count: Array.from({ length: 10 }, () => 100 + Math.round(1000 * rand())),
  }));
  const cal = calibrationPlot({
    title: 'Reliability',
    series: [
      { name: 'A', bins: bins[0]! },
      { name: EVIL, bins: bins[1]! },
    ],
  });
  const bar = barChart({
    title: 'Bars',
    yLabel: 'Dice',
    categories: ['Site A', EVIL],
    series: [
      {
        name: 'm1',
        values: [0.8, 0.7],
        intervals: [
          [0.75, 0.85],
          [0.6, 0.8],
        ],
      },
      { name: 'm2', values: [0.6, 0.9] },
    ],
  });
  for (const svg of [box, scatter, cal, bar]) {
    assert.ok(!svg.includes('<script'), 'raw markup leaked into SVG');
    assert.ok(svg.startsWith('<svg') && svg.endsWith('</svg>'));
  }
  const [b, s, c, r] = pyRef([
    { kind: 'box', svg: box, values: series.map((x) => jsonable(x.values)) },
    { kind: 'scatter', svg: scatter },
    { kind: 'calibration', svg: cal, bins },
    { kind: 'bar', svg: bar },
  ]);
  // escaped text round-trips through an XML parser unchanged
  assert.equal(b.title, `Dice ${EVIL}`);
  assert.deepEqual(b.seriesNames, ['Model 0', EVIL, 'Model 2']);
  assert.ok(s.allText.includes(EVIL));
  b.medians.forEach((m: number, i: number) => assert.ok(Math.abs(m - b.expected[i]) < 2e-3, `median ${i}: ${m} vs ${b.expected[i]}`));
  assert.deepEqual(b.dots, b.finite, 'one dot per finite case');
  assert.match(b.allText, /n=30 · 1 NaN, 1 \+Inf/);
  // scatter: every finite point where the axes put it, identity line on y = x
  const want = pts.map((p) => [Number(p.x.toFixed(2)), Number(p.y.toFixed(2))]).sort((u, v) => u[0]! - v[0]! || u[1]! - v[1]!);
  assert.equal(s.points.length, 25);
  s.points.forEach((p: number[], i: number) => {
    assert.ok(Math.abs(p[0]! - want[i]![0]!) <= 0.011 && Math.abs(p[1]! - want[i]![1]!) <= 0.011, `point ${i}`);
  });
  for (const d of s.identity) assert.ok(Math.abs(d) < 5e-3);
  assert.match(s.allText, /1 case with NaN\/Inf not shown/);
  // calibration: ECE printed in the legend equals numpy's from the same bins
  c.ece.forEach((e: number, i: number) => {
    assert.ok(Math.abs(eceFromBins(bins[i]!) - e) < 1e-12);
    assert.ok(c.allText.includes(`ECE ${(e * 100).toFixed(1)}%`), `legend shows ECE ${e}`);
  });
  // bars: tops read back through the axis are the values
  const tops = r.tops.map((g: number[]) => g.map((v) => Number(v.toFixed(3))));
  assert.deepEqual(tops, [
    [0.8, 0.7],
    [0.6, 0.9],
  ]);
});

test('escapeXml and label wrapping', () => {
  assert.equal(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
  assert.deepEqual(wrapLabel('SwinUNETR v2 small variant', 12), ['SwinUNETR v2', 'small', 'variant']);
  assert.ok(wrapLabel('x'.repeat(100), 10).every((l) => l.length <= 10));
  assert.equal(wrapLabel('x'.repeat(100), 10).length, 3);
});
