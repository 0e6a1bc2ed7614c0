/**
 * `medseg report --uncertainty --explanations` as a user runs it: predict
 * real hippocampus crops with uncertainty, explain one, evaluate, report;
 * the report's uncertainty row counts every evaluated case and the
 * explanation rows hold the faithfulness numbers of the explain JSON and of
 * a model card (--cards). A
 * folder without results is bad input (exit 2), folders not one per summary
 * a usage error (exit 64).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMedseg, type CliRun } from '../../testing/cli.ts';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { dataPath } from '../../testing/data.ts';
import { readVolume, writeVolume } from '../../io/read.ts';
import { cropVolume } from '../../testing/crop.ts';
import { syntheticFaithfulness } from '../../testing/report-fixture.ts';
import { EXIT_BAD_INPUT, EXIT_USAGE } from '../errors.ts';

function medseg(...args: string[]): CliRun {
  return runMedseg(args, { timeoutMs: 180_000 });
}

const CASES = ['hippocampus_001', 'hippocampus_003', 'hippocampus_006'];

describe('medseg report with uncertainty and explanations', () => {
  let tmp: string;
  let model: string;
  let images: string;
  let labels: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-report-confidence-'));
    model = join(tmp, 'model');
    // Untrained weights: the masks are poor, but predictions, uncertainty, Grad-CAM and Dice are all real.
    writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }]);
    images = join(tmp, 'images');
    labels = join(tmp, 'labels');
    mkdirSync(images);
    mkdirSync(labels);
    for (const id of CASES) {
      const img = await readVolume(dataPath('msd-hippocampus', 'images', `${id}.nii.gz`));
      const lab = await readVolume(dataPath('msd-hippocampus', 'labels', `${id}.nii.gz`));
      await writeVolume(join(images, `${id}.nii.gz`), cropVolume(img, [6, 14, 6], [20, 22, 20]));
      await writeVolume(join(labels, `${id}.nii.gz`), cropVolume(lab, [6, 14, 6], [20, 22, 20]));
    }
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('predict --uncertainty, explain, evaluate, report: the section tabulates them', () => {
    const preds = join(tmp, 'preds');
    let r = medseg('predict', model, images, '--out', preds, '--uncertainty', 'tta');
    assert.equal(r.status, 0, r.stderr);
    const explained = join(tmp, 'explain');
    r = medseg('explain', model, join(images, `${CASES[0]}.nii.gz`), '--method', 'gradcam', '--class', '1', '--deletion-steps', '4', '--out', explained);
    assert.equal(r.status, 0, r.stderr);
    const evaluation = join(tmp, 'eval');
    r = medseg('evaluate', preds, labels, '--out', evaluation);
    assert.equal(r.status, 0, r.stderr);
    const html = join(tmp, 'report.html');
    r = medseg('report', evaluation, '--uncertainty', preds, '--explanations', explained, '--out', html);
    assert.equal(r.status, 0, r.stderr);
    const page = readFileSync(html, 'utf8');
    const section = page.slice(page.indexOf('<section id="confidence">'), page.indexOf('</section>', page.indexOf('<section id="confidence">')));
    const row = /<tr data-model="[^"]*"><td>[^<]*<\/td><td class="num">(\d+)<\/td>/.exec(section);
    assert.ok(row, 'an uncertainty row');
    assert.equal(Number(row[1]), CASES.length, 'every predicted case is scored against its Dice');
    assert.equal((section.match(/<circle /g) ?? []).length, CASES.length);
    const j = JSON.parse(readFileSync(join(explained, `${CASES[0]}_gradcam.json`), 'utf8')) as {
      faithfulness: { randomisation: { spearman: number }; deletion: { auc: number } };
    };
    const ex = new RegExp(
      `data-method="gradcam"><td>[^<]*</td><td>${CASES[0]}</td><td>gradcam</td><td class="num">1</td>.*?<td class="num">(-?[\\d.]+)</td>`,
    ).exec(section);
    assert.ok(ex, 'an explanation row for the explained case');
    assert.equal(ex[1], j.faithfulness.randomisation.spearman.toFixed(3));
    assert.ok(section.includes(j.faithfulness.deletion.auc.toFixed(3)), 'the deletion AUC is shown');
    assert.equal((section.match(/<img /g) ?? []).length, 1, 'the overlay is embedded');

    // A model card's faithfulness numbers (checked at training end) join the explanation table.
    const card = join(tmp, 'card');
    mkdirSync(card);
    const f = syntheticFaithfulness({
      classIndex: 2,
      case: 'hippocampus_042',
      massInRegion: 0.5,
      randomisation: { spearman: 0.0123, spearmanAbs: 0.2346, passes: true, seed: 1 },
      deletion: { auc: 0.1111, randomAuc: 0.8888, steps: 10 },
    });
    writeFileSync(join(card, 'model-card.json'), JSON.stringify({ schema: 'medseg.modelcard/1', model: { name: 'trained' }, faithfulness: f }));
    r = medseg('report', evaluation, '--cards', card, '--out', join(tmp, 'card.html'));
    assert.equal(r.status, 0, r.stderr);
    const withCard = readFileSync(join(tmp, 'card.html'), 'utf8');
    assert.match(
      withCard,
      /<td>hippocampus_042 \(validation, model card\)<\/td><td>gradcam<\/td><td class="num">2<\/td><td class="num">50\.0%<\/td><td class="num">0\.012<\/td><td class="num">0\.235<\/td><td>yes<\/td><td class="num">0\.111<\/td><td class="num">0\.889<\/td>/,
    );

    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    r = medseg('report', evaluation, '--uncertainty', empty, '--out', join(tmp, 'x.html'));
    assert.equal(r.status, EXIT_BAD_INPUT, r.stderr);
    assert.match(r.stderr, /--uncertainty/);
    r = medseg('report', evaluation, '--explanations', explained, explained, '--out', join(tmp, 'x.html'));
    assert.equal(r.status, EXIT_USAGE, r.stderr);
    assert.match(r.stderr, /one per summary/);
  });
});
