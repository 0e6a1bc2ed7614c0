/**
 * The faithfulness checks: the randomisation test fails for a "randomised"
 * network that is the trained one and reports the rank correlation of the
 * two maps; the deletion curve starts at Dice 1, and
 * deleting the predicted voxels first (an oracle map) beats the random order
 * and the reversed oracle; on a trained tiny net, occlusion and Grad-CAM beat
 * the random order too; on a U-Net fitted to a real EM crop Grad-CAM passes
 * the randomisation test.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { TinyCamNet, discImages, trainedDiscNet } from '../testing/explain-nets.ts';
import { emCrop, overfit, smallConfig } from '../testing/models.ts';
import { createNetwork } from '../models/registry.ts';
import { spearman } from '../eval/statistics/correlation.ts';
import { deletionCurve, randomisationTest } from './faithfulness.ts';
import { explainImage, plainLogits } from './explain-image.ts';

test('randomisation test and deletion curves on a trained tiny net', () => {
  const net = trainedDiscNet();
  const patch = [16, 16];
  const { images } = discImages(1, 32, 7);
  const image = images.select(0, 0 + 0).clone(); // [1, 32, 32]
  const target = { classIndex: 1 };
  const logits = plainLogits(net, image, { patchSize: patch });
  const region = logits.argmax(0).eq(1).float();
  assert.ok(region.sum().item() > 20, 'the trained net finds the disc');
  const opts = { method: 'gradcam' as const, target, patchSize: patch, layer: 'features' };
  const cam = explainImage(net, image, region, opts);
  const camMap = cam.maps.get('gradcam')!;

  // A "randomised" network that is a copy of the trained one: the maps agree, rho = 1, the test fails.
  const same = randomisationTest(net, image, region, camMap, {
    ...opts,
    randomNetwork: () => {
      const copy = new TinyCamNet(2, 1, 6, 2);
      copy.loadStateDict(net.stateDict());
      return copy;
    },
  });
  assert.ok(Math.abs(same.spearman - 1) < 1e-9 && !same.passes, `copy: rho ${same.spearman}`);
  // A freshly initialised one: the reported rho is the rank correlation of the two maps.
  const fresh = randomisationTest(net, image, region, camMap, { ...opts, randomNetwork: () => new TinyCamNet(2, 1, 6, 2), seed: 3 });
  torch.manualSeed(3);
  const again = new TinyCamNet(2, 1, 6, 2).eval();
  const freshMap = explainImage(again, image, region, opts).maps.get('gradcam')!;
  assert.ok(Math.abs(fresh.spearman - spearman(camMap.toFloat32Array(), freshMap.toFloat32Array())) < 1e-12);
  assert.ok(fresh.spearman < 0.9, `fresh net: rho ${fresh.spearman}`);
  console.log(`randomisation (Grad-CAM, trained tiny net): rho ${fresh.spearman.toFixed(3)}, passes ${fresh.passes}`);

  // Deletion: the oracle (predicted voxels first) falls fastest, its reverse slowest.
  const dOpts = { patchSize: patch, steps: 32 };
  const oracle = deletionCurve(net, image, region, 1, dOpts);
  const reverse = deletionCurve(net, image, region.rsub(1), 1, dOpts);
  assert.equal(oracle.dice[0], 1);
  assert.equal(oracle.fractions.length, 33);
  assert.ok(oracle.auc < oracle.randomAuc && oracle.randomAuc < reverse.auc, `oracle ${oracle.auc}, random ${oracle.randomAuc}, reverse ${reverse.auc}`);
  const occ = explainImage(net, image, region, { method: 'occlusion', target, patchSize: patch, window: [3, 3], stride: [2, 2] }).maps.get('occlusion')!;
  for (const [name, map] of [
    ['occlusion', occ],
    ['gradcam', camMap],
  ] as const) {
    const c = deletionCurve(net, image, map, 1, dOpts);
    console.log(`deletion AUC ${name}: ${c.auc.toFixed(3)} (random order ${c.randomAuc.toFixed(3)}, oracle ${oracle.auc.toFixed(3)})`);
    assert.ok(c.auc < c.randomAuc, `${name}: AUC ${c.auc} vs random ${c.randomAuc}`);
  }
  torch.dispose([images, image, logits, region, camMap, freshMap, occ]);
  net.dispose();
  again.dispose();
});

test('a U-Net fitted to a real EM crop: Grad-CAM passes the randomisation test and its deletion curve beats the random order', async () => {
  torch.manualSeed(7);
  const d = await emCrop(48);
  const net = createNetwork(smallConfig('unet', 2, { deepSupervision: false, features: [8, 16, 32] }));
  const fit = overfit(net, d.image, d.label, { maxSteps: 150, lr: 1e-2, target: 0.9 });
  assert.ok(fit.dice[0]! > 0.9, `membrane Dice ${fit.dice[0]}`);
  net.eval();
  const patch = [32, 32];
  torch.tidy(() => {
    const image = d.image.select(0, 0);
    const region = plainLogits(net, image, { patchSize: patch }).argmax(0).eq(1).float();
    const o = { method: 'gradcam' as const, target: { classIndex: 1 }, patchSize: patch };
    const map = explainImage(net, image, region, o).maps.get('gradcam')!;
    const r = randomisationTest(net, image, region, map, o);
    const del = deletionCurve(net, image, map, 1, { patchSize: patch, steps: 10 });
    console.log(
      `EM U-Net (membrane Dice ${fit.dice[0]!.toFixed(3)}): Grad-CAM rho ${r.spearman.toFixed(3)} (abs ${r.spearmanAbs.toFixed(3)}), deletion AUC ${del.auc.toFixed(3)} vs random ${del.randomAuc.toFixed(3)}`,
    );
    assert.ok(r.passes, `rho ${r.spearman}, abs ${r.spearmanAbs}`);
    assert.ok(del.auc < del.randomAuc - 0.05, `AUC ${del.auc} vs random ${del.randomAuc}`);
  });
  torch.dispose([d.image, d.label]);
  net.dispose();
});
