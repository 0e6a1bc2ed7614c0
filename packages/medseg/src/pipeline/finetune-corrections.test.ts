/**
 * `medseg finetune --corrections` on a fixture model folder (a small 3D
 * U-Net, seeded random weights) with five real MSD hippocampus cases split
 * 3 / 2 and two corrected cases, one of them a validation case: the new
 * folder has new weights, the source folder is untouched, the corrected
 * validation case is left out of the before/after scoring, and finetune.json
 * and the model card name the corrections by hash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { foldDir, foldFile, modelCardPaths } from '../plan/model-folder.ts';
import { runMedseg } from '../testing/cli.ts';
import { dataPath } from '../testing/data.ts';
import { tinyHippocampusModel } from '../testing/tiny-hippocampus.ts';
import { EXIT_BAD_INPUT, EXIT_OK } from '../cli/errors.ts';
import type { FineTuneCorrectionsRecord } from './finetune-corrections.ts';

const CORRECTED = ['hippocampus_006', 'hippocampus_011'];
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

let tmp: string;
let model: string;
let dataset: string;
let corrections: string;
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'medseg-finetune-corrections-'));
  ({ model, dataset } = await tinyHippocampusModel(tmp));
  corrections = join(tmp, 'corrections');
  for (const d of ['images', 'labels']) {
    mkdirSync(join(corrections, d), { recursive: true });
    for (const id of CORRECTED) copyFileSync(dataPath('msd-hippocampus', d, `${id}.nii.gz`), join(corrections, d, `${id}.nii.gz`));
  }
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test(
  'finetune --corrections writes a new model folder trained on them, scored without the corrected validation case, and leaves the source as it was',
  { timeout: 180_000 },
  () => {
    const sourceWeights = sha(foldFile(foldDir(model, 0), 'best'));
    const out = join(tmp, 'tuned');
    const r = runMedseg(['finetune', model, '--corrections', corrections, '--dataset', dataset, '--out', out, '--minutes', '0.05', '--json'], {
      timeoutMs: 150_000,
    });
    assert.equal(r.status, EXIT_OK, r.stderr);
    const res = JSON.parse(r.stdout) as FineTuneCorrectionsRecord & { out: string };
    assert.equal(res.out, out);
    assert.equal(sha(foldFile(foldDir(model, 0), 'best')), sourceWeights, 'the source model is unchanged');
    assert.notEqual(sha(foldFile(foldDir(out, 0), 'best')), sourceWeights, 'the new folder has new weights');
    assert.equal(sha(foldFile(foldDir(out, 0), 'final')), sha(foldFile(foldDir(out, 0), 'best')));
    assert.ok(!existsSync(foldFile(foldDir(out, 0), 'checkpoint')), "the source's training checkpoint does not travel");
    assert.ok(!existsSync(`${out}.partial`));

    const record = JSON.parse(readFileSync(join(out, 'finetune.json'), 'utf8')) as FineTuneCorrectionsRecord;
    assert.deepEqual(record, JSON.parse(JSON.stringify({ ...res, out: undefined, ok: undefined })));
    assert.deepEqual(
      record.corrections.map((c) => [c.id, c.labelSha256]),
      CORRECTED.map((id) => [id, sha(join(corrections, 'labels', `${id}.nii.gz`))]),
    );
    assert.equal(record.derivedFrom.weightsSha256.fold_0, sourceWeights);
    const f = record.folds[0]!;
    assert.equal(f.trainingCases, 2, 'the corrected training case replaces its original');
    assert.equal(f.correctionRepeats, 1);
    assert.deepEqual(f.validationLeftOut, ['hippocampus_011']);
    assert.equal(f.validationCases, 1);
    assert.ok(f.epochs >= 1 && Number.isFinite(f.validationDiceBefore) && Number.isFinite(f.validationDiceAfter), JSON.stringify(f));

    const card = modelCardPaths(out);
    const md = readFileSync(card.markdown, 'utf8');
    assert.match(md, /## Fine-tuned on corrections/);
    assert.match(md, /hippocampus_006, hippocampus_011/);
    assert.match(md, new RegExp(f.validationDiceBefore.toFixed(4)));
    assert.deepEqual(JSON.parse(readFileSync(card.json, 'utf8')).fineTuning.folds[0].validationDiceAfter, f.validationDiceAfter);

    const again = runMedseg(['finetune', model, '--corrections', corrections, '--dataset', dataset, '--out', out, '--minutes', '0.05']);
    assert.equal(again.status, EXIT_BAD_INPUT);
    assert.match(again.stderr, /exists: the fine-tuned model is a new folder/);
  },
);

test('finetune refuses a correction without its label file, naming the case', () => {
  const bad = join(tmp, 'bad-corrections');
  for (const d of ['images', 'labels']) mkdirSync(join(bad, d), { recursive: true });
  copyFileSync(dataPath('msd-hippocampus', 'images', 'hippocampus_006.nii.gz'), join(bad, 'images', 'hippocampus_006.nii.gz'));
  const r = runMedseg(['finetune', model, '--corrections', bad, '--dataset', dataset, '--out', join(tmp, 'never'), '--minutes', '0.05']);
  assert.equal(r.status, EXIT_BAD_INPUT);
  assert.match(r.stderr, /hippocampus_006 has no label file/);
  assert.ok(!existsSync(join(tmp, 'never')) && !existsSync(join(tmp, 'never.partial')));
});
