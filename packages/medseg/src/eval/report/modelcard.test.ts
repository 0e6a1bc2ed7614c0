import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareToOthers } from '../comparison.ts';
import { addComparisonToModelCard, buildModelCard, RESEARCH_DISCLAIMER, writeModelCard } from './modelcard.ts';
import { syntheticFaithfulness, syntheticRows, SYNTHETIC_MODELS } from '../../testing/report-fixture.ts';
import { MedsegStatsError } from '../statistics/errors.ts';

const cardPaths = (dir: string) => ({ markdown: join(dir, 'model-card.md'), json: join(dir, 'model-card.json') });

test('model card: Markdown + JSON with data, plan, budget, CIs, failure cases and disclaimer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-card-'));
  try {
    const { rows } = syntheticRows();
    const model = SYNTHETIC_MODELS[1]!; // UNETR: has a NaN case and an empty prediction (Dice 0, HD95 +Inf)
    const { markdownPath, jsonPath } = writeModelCard(cardPaths(dir), {
      modelName: model.name,
      architecture: 'UNETR | ViT-B/16 encoder',
      architectureType: model.architectureType,
      parameters: model.parameters,
      data: { dataset: 'Synthetic liver tumour', cases: 150, modality: 'CT', trainingCases: 120, validationCases: 30, labels: { '1': 'tumour' } },
      plan: { patch_size: [96, 96, 96], spacing_mm: [1.5, 1.5, 2], normalization: 'CT clip 0.5–99.5 %, z-score' },
      training: { epochs: 300, budget: '8 h on 2 CPU cores', seed: 1 },
      validation: rows,
      bootstrap: { resamples: 500, seed: 3 },
      date: '2026-01-02',
    });
    const md = readFileSync(markdownPath, 'utf8');
    const json = JSON.parse(readFileSync(jsonPath, 'utf8'));
    assert.equal(json.model.name, model.name);
    assert.equal(json.disclaimer, RESEARCH_DISCLAIMER);
    assert.equal(json.data.cases, 150);
    // validation mean over finite values only, computed here independently
    const mine = rows.filter((r) => r.model === model.name);
    for (const metric of ['dice', 'hd95']) {
      const v = mine.map((r) => r[metric] as number).filter(Number.isFinite);
      const want = v.reduce((a, b) => a + b, 0) / v.length;
      const got = json.validation.find((x: any) => x.metric === metric);
      assert.ok(Math.abs(got.mean - want) < 1e-12, `${metric} mean`);
      assert.ok(got.ci95[0] < want && want < got.ci95[1], `${metric} CI brackets the mean`);
      assert.equal(got.nFinite, v.length);
    }
    assert.equal(json.validation.find((x: any) => x.metric === 'hd95').nPosInf, 1);
    // worst five by Dice, NaN left out, ascending
    const worst = mine
      .filter((r) => !Number.isNaN(r.dice as number))
      .sort((a, b) => (a.dice as number) - (b.dice as number))
      .slice(0, 5)
      .map((r) => r.case);
    assert.deepEqual(
      json.failureCases.map((f: any) => f.case),
      worst,
    );
    assert.equal(json.failureCases[0].value, 0);
    for (const h of ['## Data', '## Plan', '## Training budget', '## Validation results', '## Intended use', '## Known failure cases']) {
      assert.ok(md.includes(h), h);
    }
    assert.ok(md.includes(RESEARCH_DISCLAIMER));
    assert.ok(md.includes('UNETR \\| ViT-B/16'), 'pipes escaped in Markdown');
    assert.ok(md.includes('96 × 96 × 96'));
    assert.match(md, /1 NaN, 1 \+Inf/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model card without rows for the model is a typed error', () => {
  assert.throws(
    () =>
      writeModelCard(cardPaths(join(tmpdir(), 'nope')), {
        modelName: 'x',
        architecture: 'a',
        data: { dataset: 'd', cases: 0, modality: 'CT' },
        validation: [],
      }),
    MedsegStatsError,
  );
});

test('addComparisonToModelCard adds the section once, before Intended use, and replaces it on a second call', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-cmp-'));
  try {
    const { rows } = syntheticRows();
    const focus = SYNTHETIC_MODELS[0]!.name;
    writeModelCard(cardPaths(dir), {
      modelName: focus,
      architecture: '3D U-Net',
      data: { dataset: 'toy', cases: 30, modality: 'CT' },
      validation: rows,
      bootstrap: { resamples: 100 },
    });
    const first = compareToOthers(rows, focus, 1, 'dice');
    addComparisonToModelCard(cardPaths(dir), { context: 'first', results: [first] });
    addComparisonToModelCard(cardPaths(dir), { context: 'second run, 5 min each', results: [first] });
    const md = readFileSync(join(dir, 'model-card.md'), 'utf8');
    assert.equal(md.split('## Comparison with other architectures').length, 2, 'exactly one section');
    assert.ok(md.indexOf('## Comparison with other architectures') < md.indexOf('## Intended use'));
    assert.ok(md.includes('second run, 5 min each') && !md.includes('\nfirst\n'));
    assert.ok(md.includes(`| ${SYNTHETIC_MODELS[1]!.name} |`) && md.includes(first.verdict));
    const json = JSON.parse(readFileSync(join(dir, 'model-card.json'), 'utf8'));
    assert.equal(json.comparison.context, 'second run, 5 min each');
    assert.equal(json.comparison.results[0].opponents.length, SYNTHETIC_MODELS.length - 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('model card: the TTA levels table, each level against full', () => {
  const { rows } = syntheticRows();
  const model = SYNTHETIC_MODELS[0]!;
  const { markdown, json } = buildModelCard({
    modelName: model.name,
    architecture: 'U-Net',
    data: { dataset: 'Synthetic', cases: 10, modality: 'CT' },
    validation: rows,
    ttaLevels: [
      { level: 'none', passes: 1, secondsPerCase: 0.05, meanDice: 0.8712, cases: 10 },
      { level: 'mirror', passes: 4, secondsPerCase: 0.2, meanDice: 0.8801, cases: 10 },
      { level: 'full', passes: 8, secondsPerCase: 0.4, meanDice: 0.8809, cases: 10 },
    ],
    date: '2026-01-02',
  });
  assert.match(markdown, /## Test-time augmentation\n\n.*--tta none\|mirror\|full.*10 validation cases/);
  assert.match(markdown, /\| none \| 1 \| 0\.050 \| 0\.8712 \| -0\.0097 \|/);
  assert.match(markdown, /\| full \| 8 \| 0\.400 \| 0\.8809 \| \+0\.0000 \|/);
  assert.equal(json.ttaLevels!.length, 3);
});

test("the faithfulness section: Grad-CAM's randomisation test and deletion curve, in the JSON as given and in the Markdown with their verdict", () => {
  const { rows } = syntheticRows();
  const model = SYNTHETIC_MODELS[0]!;
  const faithfulness = syntheticFaithfulness();
  const base = { modelName: model.name, architecture: '3D U-Net', data: { dataset: 'd', cases: 1, modality: 'CT' }, validation: rows };
  const { markdown, json } = buildModelCard({ ...base, faithfulness });
  assert.deepEqual(json.faithfulness, faithfulness);
  const section = markdown.slice(markdown.indexOf('## Explanation faithfulness'), markdown.indexOf('## Intended use'));
  assert.match(
    section,
    /Grad-CAM of layer `decoder\.2` for class 1 \(tumour\), targeted at its predicted mask \(12,345 voxels\), on validation case case_007 of fold 0 \(median Dice of the fold\)/,
  );
  assert.match(section, /map of a network with freshly initialised weights 0\.071 \(absolute values 0\.654\): \*\*fails\*\*/);
  assert.match(section, /Deletion curve \(10 steps\): .* 0\.151, against 0\.876 for a random order/);
  assert.match(section, /inside the predicted mask: 43\.2%/);
  assert.ok(!buildModelCard(base).markdown.includes('## Explanation faithfulness'), 'no section without the numbers');
});
