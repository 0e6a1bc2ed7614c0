/**
 * Semi-supervised training through the pipeline on real hippocampus cases:
 * imagesTr images without labels are refused by default and become the
 * unlabelled set with { unlabelled: true }; a separate folder is read as
 * unlabelled cases; a tiny Mean Teacher run trains, checkpoints its teacher,
 * and the model folder's plan and model card say which method and how many
 * unlabelled cases.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { importPairedFolders } from '../data/import.ts';
import { readDataset } from '../data/dataset.ts';
import { computeFingerprint } from '../data/fingerprint.ts';
import { makePlan } from '../data/planner.ts';
import { HIPPOCAMPUS_SPLIT } from '../demo/hippocampus-split.ts';
import { defaultTraining } from '../plan/complete.ts';
import type { Plan } from '../plan/types.ts';
import { dataPath } from '../testing/data.ts';
import { prepareUnlabelled } from './semi-data.ts';
import { trainModel } from './train-model.ts';

const quiet = { start() {}, update() {}, stop() {} };

test(
  'a dataset with unlabelled imagesTr cases and a folder of unlabelled images train a Mean Teacher model that records them',
  { timeout: 120_000 },
  async () => {
    const ids = HIPPOCAMPUS_SPLIT.train.slice(0, 6);
    const unl = ids.slice(4);
    const out = mkdtempSync(join(tmpdir(), 'medseg-semi-'));
    const src = dataPath('msd-hippocampus');
    for (const d of ['images', 'labels']) {
      mkdirSync(join(out, 'src', d), { recursive: true });
      for (const id of ids) if (d === 'images' || !unl.includes(id)) copyFileSync(join(src, d, `${id}.nii.gz`), join(out, 'src', d, `${id}.nii.gz`));
    }
    const dsDir = await importPairedFolders(join(out, 'src/images'), join(out, 'src/labels'), join(out, 'dataset'), {
      name: 'hippo-semi',
      channelNames: ['MRI'],
      testIds: unl,
    });
    // The label-less images move from imagesTs into imagesTr; imagesTs stays as a separate unlabelled folder.
    mkdirSync(join(out, 'extra'));
    for (const f of readdirSync(join(dsDir, 'imagesTs'))) {
      copyFileSync(join(dsDir, 'imagesTs', f), join(out, 'extra', f));
      renameSync(join(dsDir, 'imagesTs', f), join(dsDir, 'imagesTr', f));
    }
    assert.throws(() => readDataset(dsDir), /has no label file/);
    const ds = readDataset(dsDir, { unlabelled: true });
    assert.deepEqual(
      ds.training.map((c) => c.id),
      ids.slice(0, 4),
    );
    assert.deepEqual(
      ds.unlabelled!.map((c) => c.id),
      unl,
    );

    const fp = await computeFingerprint(ds);
    const plan: Plan = await makePlan(fp, {});
    plan.network.features = [4, 8];
    plan.network.strides = [
      [1, 1, 1],
      [2, 2, 2],
    ];
    plan.network.kernelSizes = [
      [3, 3, 3],
      [3, 3, 3],
    ];
    plan.patchSize = [32, 48, 32];
    plan.batchSize = 1;
    plan.epochs = 1;
    plan.iterationsPerEpoch = 3;
    plan.inference = { mirror: false, stepFraction: 0.5, transpose: false, precision: 'fp32' };
    plan.training = { ...defaultTraining(plan, { optimizer: 'adamw' }), checkpointEvery: 1 };

    const folder = await prepareUnlabelled(ds, plan, join(out, 'cache'), { folder: join(out, 'extra') });
    assert.deepEqual(folder.ids, unl);
    assert.ok(readdirSync(folder.cacheDir).includes(`${unl[0]}.bin`));

    const model = join(out, 'model');
    const split = { train: ids.slice(0, 3), val: [ids[3]!] };
    const run = () =>
      trainModel({
        dataset: dsDir,
        out: model,
        plan,
        split,
        log: () => {},
        progress: quiet,
        faithfulness: false,
        semi: { method: 'mean-teacher', settings: { noisePasses: 2 } },
      });
    const r = await run();
    assert.equal(r.folds[0]!.result.epochsRun, 1);
    const saved = JSON.parse(readFileSync(join(model, 'plan.json'), 'utf8')) as Plan;
    assert.equal(saved.semiSupervised?.method, 'mean-teacher');
    assert.equal(saved.semiSupervised?.unlabelledCases, 2);
    assert.equal(saved.semiSupervised?.noisePasses, 2);
    assert.match(readFileSync(join(model, 'model-card.md'), 'utf8'), /Semi-supervised: mean-teacher with 2 unlabelled cases/);
    // The checkpoint carries the teacher, so a resumed run continues it.
    const { readWeights } = await import('../plan/model-weights.ts');
    const ck = readWeights(join(model, 'fold_0', 'checkpoint_latest.safetensors'));
    assert.ok([...ck.tensors.keys()].some((k) => k.startsWith('extra.teacher.')));
    for (const t of ck.tensors.values()) t.dispose();

    // Without unlabelled cases, semi-supervised training is a clear error.
    await assert.rejects(
      trainModel({
        dataset: dsDir,
        out: join(out, 'model-none'),
        plan,
        split,
        log: () => {},
        progress: quiet,
        faithfulness: false,
        semi: { method: 'pseudo-label', unlabelled: { datasetIds: ['nope'] } },
      }),
      /unlabelled case nope is not a training case/,
    );
  },
);
