import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPath } from '../testing/data.ts';
import { importPairedFolders } from '../data/import.ts';
import { readDataset } from '../data/dataset.ts';
import { computeFingerprint } from '../data/fingerprint.ts';
import { makePlan } from '../data/planner.ts';
import { defaultTraining } from '../plan/complete.ts';
import { evaluateFolder } from '../eval/evaluate-folder.ts';
import { trainModel } from './train-model.ts';
import { predictPath } from './predict-folder.ts';
import { HIPPOCAMPUS_SPLIT } from '../demo/hippocampus-split.ts';
import { readCalibration } from '../plan/model-folder.ts';
import { readVolume } from '../io/read.ts';
import type { ModelCardFaithfulness } from '../eval/report/modelcard.ts';

const quiet = { start() {}, update() {}, stop() {} };

test('end to end on real hippocampus data: import, plan, train briefly, predict held-out cases, and it has learned', { timeout: 300_000 }, async () => {
  const split = HIPPOCAMPUS_SPLIT;
  const train = split.train.slice(0, 24);
  const val = split.validation.slice(0, 4);
  const src = dataPath('msd-hippocampus');
  const out = mkdtempSync(join(tmpdir(), 'medseg-e2e-'));
  // A small copy of the dataset in the shared layout, imported like a user would.
  for (const d of ['images', 'labels']) {
    mkdirSync(join(out, 'src', d), { recursive: true });
    for (const id of [...train, ...val]) copyFileSync(join(src, d, `${id}.nii.gz`), join(out, 'src', d, `${id}.nii.gz`));
  }
  const dsDir = await importPairedFolders(join(out, 'src/images'), join(out, 'src/labels'), join(out, 'dataset'), {
    name: 'hippo-small',
    channelNames: ['MRI'],
  });
  const fp = await computeFingerprint(readDataset(dsDir));
  const plan = await makePlan(fp, {});
  // nnU-Net's topology for hippocampus: 40x56x40 patches, three isotropic poolings.
  assert.deepEqual(plan.patchSize, [40, 56, 40]);
  assert.deepEqual(plan.network.strides, [
    [1, 1, 1],
    [2, 2, 2],
    [2, 2, 2],
    [2, 2, 2],
  ]);
  // Shrunk to a CPU-test size: a 32x48x32 patch (the same three poolings), 16 base channels, batch 2, 80 AdamW steps, no TTA.
  plan.patchSize = [32, 48, 32];
  plan.network.features = [16, 32, 64, 128];
  plan.batchSize = 2;
  plan.epochs = 2;
  plan.iterationsPerEpoch = 40;
  plan.inference = { mirror: false, stepFraction: 0.5, transpose: false, precision: 'fp32' };
  plan.training = defaultTraining(plan, { optimizer: 'adamw' });

  const model = join(out, 'model');
  const r = await trainModel({ dataset: dsDir, out: model, plan, split: { train, val }, log: () => {}, progress: quiet });
  for (const f of [
    'plan.json',
    'splits.json',
    'postprocessing.json',
    'model-card.md',
    'model-card.json',
    'fold_0/model_best.safetensors',
    'fold_0/log.jsonl',
  ]) {
    assert.ok(existsSync(join(model, f)), `model folder lacks ${f}`);
  }
  assert.equal(r.folds[0]!.result.epochsRun, 2);
  // Calibration on the validation cases: a temperature that lowers the NLL, and a triage rule, in the folder and the card.
  const cal = readCalibration(model)!;
  assert.ok(cal.temperature > 0 && Number.isFinite(cal.temperature), `temperature ${cal.temperature}`);
  assert.ok(cal.nll.after <= cal.nll.before + 1e-9, `NLL ${cal.nll.before} -> ${cal.nll.after}`);
  assert.ok(cal.voxels > 1000 && cal.triage?.cases === 4, JSON.stringify(cal));
  assert.deepEqual(cal.cases?.map((c) => c.id).sort(), [...val].sort());
  const card = readFileSync(join(model, 'model-card.md'), 'utf8');
  assert.match(card, /## Confidence and triage[\s\S]*Temperature/);
  // Grad-CAM's faithfulness on the median-Dice validation case, in both forms of the card.
  const f = (JSON.parse(readFileSync(join(model, 'model-card.json'), 'utf8')) as { faithfulness: ModelCardFaithfulness }).faithfulness;
  assert.ok(val.includes(f.case) && f.method === 'gradcam' && f.layer, JSON.stringify(f));
  const byDice = [...cal.cases!].filter((c) => c.dice < 1).sort((a, b) => a.dice - b.dice);
  assert.equal(f.case, byDice[Math.floor((byDice.length - 1) / 2)]!.id, 'the median-Dice case');
  for (const v of [f.randomisation.spearman, f.randomisation.spearmanAbs, f.deletion.auc, f.deletion.randomAuc, f.massInRegion])
    assert.ok(Number.isFinite(v), JSON.stringify(f));
  assert.equal(f.randomisation.passes, f.randomisation.spearman < 0.5 && f.randomisation.spearmanAbs < 0.5);
  assert.match(
    card,
    new RegExp(`## Explanation faithfulness[\\s\\S]*validation case ${f.case}[\\s\\S]*Randomisation test[\\s\\S]*Deletion curve \\(10 steps\\)`),
  );

  const imgs = join(out, 'images');
  const refs = join(out, 'labels');
  mkdirSync(imgs);
  mkdirSync(refs);
  for (const id of val) {
    copyFileSync(join(src, 'images', `${id}.nii.gz`), join(imgs, `${id}.nii.gz`));
    copyFileSync(join(src, 'labels', `${id}.nii.gz`), join(refs, `${id}.nii.gz`));
  }
  const preds = join(out, 'predictions');
  const p = await predictPath({ model, input: imgs, out: preds, progress: quiet });
  assert.equal(p.outputs.length, 4);
  const ev = await evaluateFolder({ predictions: preds, references: refs, labels: [1, 2] });
  assert.deepEqual(ev.missingPredictions, []);
  const dice = ev.summary.filter((s) => s.metric === 'dice').map((s) => s.mean);
  // 80 steps of a 16-channel U-Net: far from converged, but well above an untrained net (~0).
  assert.ok(Math.min(...dice) > 0.3, `held-out Dice ${dice.map((d) => d.toFixed(3))} is below the floor`);
  // With uncertainty: the same labels (one fold, no TTA: one member), maps on the input grid, a score and a flag from the model's rule.
  const withU = join(out, 'predictions-u');
  const pu = await predictPath({ model, input: imgs, out: withU, progress: quiet, uncertainty: {} });
  for (const [i, o] of pu.outputs.entries()) {
    assert.deepEqual((await readVolume(o.output)).data, (await readVolume(p.outputs[i]!.output)).data);
    const u = JSON.parse(readFileSync(o.uncertainty!, 'utf8')) as {
      case: string;
      score: number;
      triageScore: number;
      flagged: boolean;
      threshold: number;
      members: number;
      temperature: number;
    };
    assert.equal(u.members, 1);
    assert.equal(u.temperature, cal.temperature);
    // The score prediction compares with the threshold is the one validation fitted the threshold on.
    const fitted = cal.cases!.find((c) => c.id === u.case)!.score;
    assert.ok(Math.abs(u.triageScore - fitted) < 1e-6, `${u.case}: predicted ${u.triageScore}, validation ${fitted}`);
    assert.equal(u.flagged, u.triageScore >= cal.triage!.threshold);
    assert.equal(o.flagged, u.flagged);
    const h = await readVolume(o.output.replace('.nii.gz', '_entropy.nii.gz'));
    assert.deepEqual(h.size, (await readVolume(o.output)).size);
    assert.ok((h.data as Float32Array).every((v) => v >= 0 && v <= 1 + 1e-6));
  }
});
