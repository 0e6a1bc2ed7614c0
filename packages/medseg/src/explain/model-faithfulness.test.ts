/**
 * The model card's faithfulness numbers: the median-Dice case is chosen
 * among those where the class is predicted, and its numbers are those
 * `medseg explain --method gradcam` reports for the same case and seed.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { dataPath } from '../testing/data.ts';
import { disposeModel, loadModel, prepareInput } from '../infer/predict.ts';
import { readVolume } from '../io/read.ts';
import { explainVolumes } from './explain-case.ts';
import { medianDiceCase, validationFaithfulness } from './model-faithfulness.ts';

test('the median-Dice case among those with the class predicted', () => {
  const c = (id: string, dice: number, predicted = true) => ({ id, dice, predicted });
  assert.equal(medianDiceCase([c('a', 0.9), c('b', 0.2), c('c', 0.5)]), 'c');
  assert.equal(medianDiceCase([c('a', 0.9), c('b', 0.2), c('c', 0.5), c('d', 0.7)]), 'c', 'the lower middle of an even count');
  assert.equal(medianDiceCase([c('a', 0.9), c('b', 0.1, false), c('c', Number.NaN), c('d', 0.3)]), 'd');
  assert.equal(medianDiceCase([c('a', 0.9, false)]), null);
});

test("Grad-CAM's faithfulness on a validation case equals medseg explain's on the same case and seed", async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-model-faith-'));
  try {
    const plan = writeFixtureModel(join(tmp, 'm'), 'gray2d', [{ weights: { best: 'random' } }]);
    const model = loadModel(join(tmp, 'm'));
    const em = await readVolume(dataPath('isbi2012-em', 'images', '3.png'));
    // A 24 x 16 block of the slice: two tiles of the fixture's 16 x 16 patch.
    const data = new Uint8Array(24 * 16);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 24; x++) data[y * 24 + x] = em.data[(150 + y) * em.size[0] + 100 + x]!;
    const slice = { ...em, data, size: [24, 16, 1] as [number, number, number] };
    const c = { ...prepareInput(plan, [slice]).case, id: 'em_3' };
    const f = validationFaithfulness(model.nets[0]!, plan, c, 2, { seed: 5, deletionSteps: 3 });
    const e = explainVolumes(model, [slice], { method: 'gradcam', seed: 5, deletionSteps: 3 });
    assert.deepEqual([f.case, f.fold, f.method, f.classIndex, f.className, f.layer], ['em_3', 2, 'gradcam', 1, 'anterior', e.settings.layer]);
    assert.equal(f.regionVoxels, e.region.voxels);
    assert.equal(f.massInRegion, e.massInRegion);
    const r = e.faithfulness!.randomisation;
    assert.deepEqual(f.randomisation, { spearman: r.spearman, spearmanAbs: r.spearmanAbs, passes: r.passes, seed: 5 });
    assert.deepEqual(f.deletion, { auc: e.faithfulness!.deletion.auc, randomAuc: e.faithfulness!.deletion.randomAuc, steps: 3 });
    assert.ok(f.seconds > 0);
    disposeModel(model);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
