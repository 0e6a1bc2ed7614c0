import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonNumberReplacer } from '../metrics_rows.ts';
import { parseCsv } from '../../util/csv.ts';
import { pickBestMedianWorst, renderReportHtml, writeReport } from './html-report.ts';
import { syntheticReportInput, SYNTHETIC_MODELS } from '../../testing/report-fixture.ts';
import { MedsegStatsError } from '../statistics/errors.ts';
import { runPythonJson } from '../../testing/python.ts';

const REF = fileURLToPath(new URL('./html_report_ref.py', import.meta.url));

test('writeReport: one self-contained HTML file with every section, checked by an independent parser', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-report-'));
  try {
    const input = syntheticReportInput({ modelCardHref: (m) => `cards/${encodeURIComponent(m)}/model-card.md` });
    const out = await writeReport(join(dir, 'sub', 'report.html'), input);
    const html = readFileSync(out, 'utf8');
    // nothing that would need the network or run code
    const noNs = html.replaceAll('xmlns="http://www.w3.org/2000/svg"', '');
    for (const bad of [/<script/i, /<link/i, /@import/i, /url\(/i, /src="(?!data:)/i, /https?:\/\//i]) {
      const m = bad.exec(noNs);
      assert.equal(m, null, `external or active content: ${m ? noNs.slice(Math.max(0, m.index - 60), m.index + 60) : ''}`);
    }
    assert.ok(!html.includes('<v2>'), 'model names are escaped');
    for (const id of ['summary', 'distributions', 'paired', 'calibration', 'subgroups', 'overlays', 'timing', 'cases']) {
      assert.ok(html.includes(`<section id="${id}">`), `section ${id}`);
    }
    const ref = runPythonJson<any>([REF], { html, rows: JSON.parse(JSON.stringify(input.rows, jsonNumberReplacer)), metrics: ['dice', 'iou', 'hd95'] });
    // a summary row per model, in order, with the numpy mean over finite values
    assert.deepEqual(
      ref.summaryRows.map((x: any) => x.model),
      SYNTHETIC_MODELS.map((m) => m.name),
    );
    for (const row of ref.summaryRows) {
      const [, , dice, iou, hd95] = row.cells as string[];
      for (const [cell, metric, digits] of [
        [dice, 'dice', 3],
        [iou, 'iou', 3],
        [hd95, 'hd95', 2],
      ] as const) {
        const shown = Number.parseFloat(cell!);
        assert.ok(
          Math.abs(shown - ref.expected[row.model][metric]) <= 0.5 * 10 ** -digits + 1e-12,
          `${row.model} ${metric}: ${cell} vs ${ref.expected[row.model][metric]}`,
        );
        assert.match(cell!, /\[[\d.]+, [\d.]+\]/, 'has a CI');
      }
    }
    // 4 box plots + scatter + calibration + 3 subgroup bar charts
    assert.equal(ref.svgs, 4 + 1 + 1 + 3);
    // best/median/worst per model, all decodable PNGs
    assert.equal(ref.pngs.length, 3 * SYNTHETIC_MODELS.length);
    for (const [w, h] of ref.pngs) assert.ok(w > 0 && h > 0);
    for (const m of SYNTHETIC_MODELS) assert.ok(ref.links.includes(`cards/${encodeURIComponent(m.name)}/model-card.md`));
    assert.match(html, /1 NaN, 1 \+Inf/, 'non-finite exclusions are reported');
    assert.match(html, /Holm-adjusted over the 18 tests/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('best/median/worst picks follow the metric direction and skip NaN', () => {
  const rows = [0.9, Number.NaN, 0.5, 0.7, 0.1].map((dice, i) => ({ model: 'm', case: `c${i}`, label: 1, dice, hd95: 10 - 10 * dice }));
  const byDice = pickBestMedianWorst(rows, 'm', 1, 'dice', 'higher');
  assert.deepEqual(
    byDice.map((s) => [s.rank, s.case]),
    [
      ['best', 'c0'],
      ['median', 'c2'],
      ['worst', 'c4'],
    ],
  );
  const byHd = pickBestMedianWorst(rows, 'm', 1, 'hd95', 'lower');
  assert.deepEqual(
    byHd.map((s) => s.case),
    ['c0', 'c2', 'c4'],
  );
});

test('per-case CSV download: every row, numbers as numbers, hostile ids neutralised', async () => {
  const hostile = ['=HYPERLINK("http://evil.example","x")', '@SUM(A1)', '+1', '-cmd'];
  const rows = hostile.flatMap((id, i) => [
    { model: 'a', case: id, label: 1, dice: 0.5 + 0.1 * i, hd95: -1.5 * i - 0.5 },
    { model: '=b', case: id, label: 1, dice: 0.4 + 0.1 * i, hd95: i === 2 ? Number.POSITIVE_INFINITY : 2 },
  ]);
  const html = await renderReportHtml({
    title: 't',
    rows,
    bootstrap: { resamples: 50 },
    hardware: { cpuModel: 'x', cores: 1, platform: 'linux', arch: 'x64', totalMemoryGiB: 1, node: 'v20' },
  });
  const href = /download="per-case-metrics\.csv" href="data:text\/csv;charset=utf-8,([^"]*)"/.exec(html);
  assert.ok(href, 'CSV link present');
  const [header, ...table] = parseCsv(decodeURIComponent(href[1]!));
  assert.deepEqual(header, ['model', 'case', 'label', 'dice', 'hd95']);
  assert.equal(table.length, rows.length);
  table.forEach((r, i) => {
    const want = rows[i]!;
    assert.equal(r[0], want.model.startsWith('=') ? `'${want.model}` : want.model);
    assert.equal(r[1], `'${want.case}`);
    assert.equal(Number(r[3]), want.dice);
    assert.equal(Number(r[4]), want.hd95, 'negative and infinite numbers stay numbers');
  });
});

test('report input errors are typed', async () => {
  await assert.rejects(writeReport(join(tmpdir(), 'never.html'), { title: 't', rows: [] }), MedsegStatsError);
  await assert.rejects(writeReport(join(tmpdir(), 'never.html'), { title: 't', rows: [{ model: '', case: 'c', label: 1, dice: 1 }] }), MedsegStatsError);
});
