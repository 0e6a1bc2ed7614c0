import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readVolume } from '../io/read.ts';
import { modelFile, readCalibration, writeCalibration } from '../plan/model-folder.ts';
import { dataPath } from '../testing/data.ts';
import { fixtureCalibration, writeFixtureModel } from '../testing/model-fixture.ts';
import { cropVolume } from '../testing/crop.ts';
import type { Vec3, Volume } from '../io/volume.ts';
import { predictCaseMembers, validationSources } from './predict-case.ts';
import { disposeModel, loadModel, predictVolumes, prepareInput } from './predict.ts';
import { disposeUncertaintyMaps, triageScore } from './uncertainty.ts';
import { ValidationConfidence } from './validation-confidence.ts';

const ID = 'hippocampus_001';

/** A 24 x 20 x 16 block around the hippocampus: two tiles of the fixture's 16^3 patch. */
async function block(kind: 'images' | 'labels'): Promise<Volume> {
  const start: Vec3 = [6, 16, 10];
  return cropVolume(await readVolume(dataPath('msd-hippocampus', kind, `${ID}.nii.gz`)), start, [24, 16, 16]);
}

test("a validation case's triage score is the score prediction reports for it with the calibrated model, so the rule's threshold applies to prediction", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-valconf-'));
  try {
    const plan = writeFixtureModel(dir, 'mri3d', [{ weights: { best: 'random' } }]);
    plan.inference = { ...plan.inference, mirror: true };
    writeFileSync(modelFile(dir, 'plan'), JSON.stringify(plan));
    const image = await block('images');
    const reference = await block('labels');
    let model = loadModel(dir);
    const c = { ...prepareInput(plan, [image], Uint8Array.from(reference.data as ArrayLike<number>)).case, id: ID };

    // Training's two passes over the validation case: logits at T = 1, then the score at the fitted T.
    const confidence = new ValidationConfidence(3, validationSources(plan.inference, 3));
    const first = predictCaseMembers(model.nets[0]!, c, plan.patchSize, plan.inference);
    const scoreAtOne = triageScore(first, 3).meanEntropy;
    confidence.addCase(ID, 0, first, c.label!, 0.5);
    disposeUncertaintyMaps(first);
    const { temperature } = confidence.fitTemperature();
    assert.ok(Math.abs(temperature - 1) > 0.05, `an untrained net needs a temperature away from 1, got ${temperature}`);
    const second = predictCaseMembers(model.nets[0]!, c, plan.patchSize, plan.inference, temperature);
    confidence.scoreCase(ID, second);
    disposeUncertaintyMaps(second);
    const cal = confidence.finish()!;
    assert.deepEqual([cal.members, cal.sources, cal.cases!.length], [8, ['tta'], 1]);
    const trained = cal.cases![0]!.score;
    assert.ok(Math.abs(trained - scoreAtOne) > 1e-3, `the temperature changes the score (${scoreAtOne} at T = 1, ${trained} at T = ${temperature})`);
    // One failing case: the threshold is its own score.
    assert.equal(cal.triage!.threshold, trained);
    writeCalibration(dir, cal);

    disposeModel(model);
    model = loadModel(dir);
    assert.equal(readCalibration(dir)!.temperature, temperature);
    const u = predictVolumes(model, [image], { uncertainty: {} }).uncertainty!;
    assert.deepEqual([u.temperature, u.sources, u.score.members], [temperature, ['ensemble', 'tta'], 8]);
    assert.ok(Math.abs(u.triageScore - trained) < 1e-6, `prediction scores the case ${u.triageScore}, validation ${trained}`);
    assert.equal(u.triageScore, u.score.meanEntropy, 'one fold: the triage score is the case score');
    assert.equal(u.flagged, true, 'the failing validation case is flagged at its own threshold');

    // Members the rule was not fitted on give no flag, and say why.
    const single = predictVolumes(model, [image], { uncertainty: { sources: ['ensemble'] } }).uncertainty!;
    assert.equal(single.flagged, null);
    assert.match(single.triageNote!, /fitted on scores from tta \(8 member\(s\) per fold\); these come from a single pass \(1 per fold\)/);
    disposeModel(model);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two folds: the triage score is the mean of each fold scoring the case with its own members', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-valconf2-'));
  try {
    const plan = writeFixtureModel(dir, 'mri3d', [{ weights: { best: 'random' } }, { weights: { best: 'random' } }]);
    const image = await block('images');
    const model = loadModel(dir);
    const c = prepareInput(plan, [image]).case;
    const own = model.nets.map((net) => {
      const maps = predictCaseMembers(net, c, plan.patchSize, plan.inference, 1.3);
      const s = triageScore(maps, 3).meanEntropy;
      disposeUncertaintyMaps(maps);
      return s;
    });
    writeCalibration(dir, fixtureCalibration({ temperature: 1.3, threshold: (own[0]! + own[1]!) / 2, members: 1, sources: [] }));
    disposeModel(model);
    const again = loadModel(dir);
    const u = predictVolumes(again, [image], { uncertainty: {} }).uncertainty!;
    assert.equal(u.score.members, 2);
    assert.ok(Math.abs(u.triageScore - (own[0]! + own[1]!) / 2) < 1e-6, `${u.triageScore} vs the folds' ${own}`);
    assert.notEqual(u.triageScore, u.score.meanEntropy, "the two folds' disagreement raises the ensemble's entropy, not the triage score");
    assert.equal(u.flagged, true);
    disposeModel(again);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the validation passes refuse to run out of order', () => {
  const confidence = new ValidationConfidence(2, []);
  assert.throws(() => confidence.fitTemperature(), /no validation case/);
  assert.equal(confidence.finish(), null);
});
