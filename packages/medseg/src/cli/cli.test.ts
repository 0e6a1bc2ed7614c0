/**
 * The medseg CLI as a user runs it: a child process per command, checking
 * exit codes, that --json gives exactly one JSON object on stdout, that
 * errors are readable (no stack trace), and the files evaluate/report write.
 */
import { runMedseg, type CliRun } from '../testing/cli.ts';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeModelCard } from '../eval/report/modelcard.ts';
import { readVolume, writeVolume } from '../io/read.ts';
import { dataPath } from '../testing/data.ts';
import { parseCsv } from '../util/csv.ts';
import { EXIT_BAD_INPUT, EXIT_USAGE } from './errors.ts';
import { runPython } from '../testing/python.ts';

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 120_000 });
}

const STACK = /\n\s+at .+:\d+:\d+/;

function assertReadableFailure(r: ReturnType<typeof medseg>, code: number, pattern: RegExp): void {
  assert.equal(r.status, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, STACK, 'no stack trace without MEDSEG_DEBUG');
  assert.doesNotMatch(r.stderr, /UnhandledPromiseRejection|node:internal/);
}

describe('medseg CLI', () => {
  let tmp: string;
  const drive = dataPath('drive', 'testing');
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-cli-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('--help lists the commands and the exit codes; usage errors exit 64', () => {
    const help = medseg('--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /evaluate/);
    assert.match(help.stdout, /report/);
    assert.match(help.stdout, /Exit codes:[^]*\n {2}64 +usage error/);
    assert.equal(medseg('evaluate', '--help').status, 0);
    assertReadableFailure(medseg('evaluate'), EXIT_USAGE, /missing required argument/);
    assertReadableFailure(medseg('evaluate', 'a', 'b', '--tau', 'x'), EXIT_USAGE, /--tau/);
    assertReadableFailure(medseg('no-such-command'), EXIT_USAGE, /unknown command/);
    assertReadableFailure(medseg('train', 'ds', '--out', 'm', '--encoder-lr-scale', '0'), EXIT_USAGE, /go with --init/);
    assertReadableFailure(medseg('train', 'ds', '--out', 'm', '--init', 'x', '--init-from', 'timm'), EXIT_USAGE, /--init-from/);
  });

  test('evaluate DRIVE 2nd vs 1st observer --json: metrics.csv, summary.json, one JSON object on stdout', () => {
    const out = join(tmp, 'eval-fov');
    const r = medseg(
      'evaluate',
      join(drive, '2nd_manual'),
      join(drive, '1st_manual'),
      '--region-masks',
      join(drive, 'mask'),
      '--pattern',
      '^(\\d+)_',
      '--binarize',
      '--tau',
      '2',
      '--model',
      'observer 2',
      '--out',
      out,
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { ok: boolean; nCases: number; labels: number[]; metricsCsv: string; summaryJson: string };
    assert.equal(res.ok, true);
    assert.equal(res.nCases, 20);
    assert.deepEqual(res.labels, [1]);
    assert.ok(existsSync(res.metricsCsv) && existsSync(res.summaryJson), 'output files');

    const [header, ...rows] = parseCsv(readFileSync(join(out, 'metrics.csv'), 'utf8'));
    assert.equal(rows.length, 20);
    const col = (name: string) => header!.indexOf(name);
    const row01 = rows.find((x) => x[col('case')] === '01')!;
    assert.equal(row01[col('tau')], '2');
    // Dice of case 01 inside the FOV, by NumPy from the GIFs
    const dice = runPython([
      '-c',
      `
import numpy as np; from PIL import Image
d = '${drive}'
a = np.array(Image.open(d + '/2nd_manual/01_manual2.gif')) != 0
b = np.array(Image.open(d + '/1st_manual/01_manual1.gif')) != 0
m = np.array(Image.open(d + '/mask/01_test_mask.gif')) != 0
a &= m; b &= m
print(repr(2 * (a & b).sum() / (a.sum() + b.sum())))`,
    ]);
    assert.ok(Math.abs(Number(row01[col('dice')]) - Number(dice)) < 1e-12, `${row01[col('dice')]} vs ${dice}`);

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      schema: string;
      model: string;
      summary: { metric: string; mean: number }[];
      rows: unknown[];
    };
    assert.equal(summary.schema, 'medseg.evaluation/1');
    assert.equal(summary.model, 'observer 2');
    assert.equal(summary.rows.length, 20);
    const csvMean = rows.reduce((s, x) => s + Number(x[col('dice')]), 0) / rows.length;
    assert.ok(Math.abs(summary.summary.find((s) => s.metric === 'dice')!.mean - csvMean) < 1e-12, 'summary mean = mean of the CSV');
  });

  test('report: HTML with the summary table and a paired test of two models', () => {
    const second = join(tmp, 'eval-nofov');
    const e2 = medseg('evaluate', join(drive, '2nd_manual'), join(drive, '1st_manual'), '--pattern', '^(\\d+)_', '--binarize', '--tau', '2', '--out', second);
    assert.equal(e2.status, 0, e2.stderr);
    assert.match(e2.stdout, /dice/);
    const sg = join(tmp, 'groups.csv');
    writeFileSync(sg, 'case,site\n01,"North, 3T"\n02,South\n03,"North, 3T"\n04,South\n');
    const cardDir = join(tmp, 'cards', 'fov');
    writeModelCard(
      { markdown: join(cardDir, 'model-card.md'), json: join(cardDir, 'model-card.json') },
      {
        modelName: 'Observer 2 (FOV)',
        architecture: 'human second reader',
        architectureType: 'Human',
        data: { dataset: 'DRIVE test', cases: 20, modality: 'fundus photography' },
        validation: [{ model: 'Observer 2 (FOV)', case: '01', label: 1, dice: 0.8 }],
      },
    );
    const html = join(tmp, 'out', 'report.html');
    const r = medseg(
      'report',
      join(tmp, 'eval-fov', 'summary.json'),
      second,
      '--names',
      'Observer 2 (FOV),Observer 2 (whole image)',
      '--subgroups',
      sg,
      '--cards',
      cardDir,
      '--out',
      html,
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { models: string[] }).models, ['Observer 2 (FOV)', 'Observer 2 (whole image)']);
    const page = readFileSync(html, 'utf8');
    assert.match(page, /<table/);
    assert.ok(page.includes('Observer 2 (FOV)') && page.includes('Observer 2 (whole image)'), 'model names');
    const mean = (JSON.parse(readFileSync(join(second, 'summary.json'), 'utf8')) as { summary: { metric: string; mean: number }[] }).summary.find(
      (s) => s.metric === 'dice',
    )!.mean;
    assert.ok(page.includes(mean.toFixed(3)), `Dice mean ${mean.toFixed(3)} in the table`);
    assert.match(page, /Wilcoxon/);
    assert.ok(page.includes('North, 3T'), 'subgroup from the CSV');
    assert.ok(page.includes('href="../cards/fov/model-card.md"'), 'model card linked relative to the report');
    assert.ok(page.includes('Human'), 'architecture type from the card');

    assertReadableFailure(medseg('report', sg, '--out', join(tmp, 'x.html')), EXIT_BAD_INPUT, /not valid JSON/);
    writeFileSync(join(tmp, 'other.json'), '{"a": 1}');
    assertReadableFailure(medseg('report', join(tmp, 'other.json'), '--out', join(tmp, 'x.html')), EXIT_BAD_INPUT, /medseg evaluate/);
    assertReadableFailure(medseg('report', second, second, '--out', join(tmp, 'x.html')), EXIT_USAGE, /--names/);
  });

  test('bad input: missing folder, corrupt file, mismatched geometry -> exit 2 with a readable message', async () => {
    const missing = join(tmp, 'no-such-folder');
    const r = medseg('evaluate', missing, join(drive, '1st_manual'), '--json');
    assertReadableFailure(r, EXIT_BAD_INPUT, new RegExp(`${missing}.*does not exist`));
    const err = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; path: string } };
    assert.equal(err.ok, false);
    assert.equal(err.error.code, 'NOT_FOUND');
    assert.equal(err.error.path, missing);

    const refs = join(tmp, 'refs');
    const preds = join(tmp, 'preds');
    mkdirSync(refs);
    mkdirSync(preds);
    const v = await readVolume(dataPath('msd-hippocampus', 'labels', 'hippocampus_001.nii.gz'));
    await writeVolume(join(refs, 'case1.nii.gz'), v);
    writeFileSync(join(preds, 'case1.nii.gz'), Buffer.from('this is not a NIfTI file at all, just text'));
    assertReadableFailure(medseg('evaluate', preds, refs, '--out', join(tmp, 'o1')), EXIT_BAD_INPUT, /preds\/case1\.nii\.gz/);

    await writeVolume(join(preds, 'case1.nii.gz'), { ...v, spacing: [v.spacing[0] * 1.5, v.spacing[1], v.spacing[2]] });
    const g = medseg('evaluate', preds, refs, '--out', join(tmp, 'o2'));
    assertReadableFailure(g, EXIT_BAD_INPUT, /spacing/);
    assert.ok(g.stderr.includes(join(preds, 'case1.nii.gz')) && g.stderr.includes(join(refs, 'case1.nii.gz')), g.stderr);
  });
});
