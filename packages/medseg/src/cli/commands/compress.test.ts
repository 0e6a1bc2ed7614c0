/**
 * `medseg compress --int8` as a user runs it: a model folder whose U-Net is
 * fitted to a real hippocampus crop, calibrated on the training cases of a
 * small dataset imported from real MSD hippocampus files. The written int8
 * model runs in onnxruntime, keeps the plan's metadata, records the
 * calibration, and agrees with the fp32 export on a real patch; usage errors
 * give their exit codes.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import { runMedseg } from '../../testing/cli.ts';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { hippocampusCrop, overfit } from '../../testing/models.ts';
import { dataPath } from '../../testing/data.ts';
import { createNetwork } from '../../models/registry.ts';
import { foldDir, foldFile } from '../../plan/model-folder.ts';
import { saveWeights } from '../../plan/model-weights.ts';
import { importPairedFolders } from '../../data/import.ts';
import { readOnnxMetadata } from '../../deploy/onnx-builder.ts';
import { QUANTIZATION_METADATA_KEY } from '../../deploy/quantize.ts';
import { EXIT_USAGE } from '../errors.ts';
import { disposeModel, loadModel, predictVolumes } from '../../infer/predict.ts';
import { diceScores } from '../../infer/predict-case.ts';
import { readVolume } from '../../io/read.ts';
import { exportLoadedFold } from '../../deploy/export-model.ts';
import { OnnxNetwork } from '../../deploy/onnx-engine.ts';

torch.manualSeed(7);

async function logits(file: string, x: torch.Tensor): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  try {
    return (await s.run({ image: new ort.Tensor('float32', x.toFloat32Array(), x.shape) })).logits!.data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('medseg compress --int8', () => {
  let tmp: string;
  let model: string;
  let dataset: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-compress-cli-'));
    model = join(tmp, 'model');
    const plan = writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }]);
    const net = createNetwork(plan.network);
    const { image, label } = await hippocampusCrop([16, 16, 16]);
    const fit = overfit(net, image, label, { maxSteps: 100, lr: 1e-2, target: 0.8 });
    assert.ok(Math.min(...fit.dice) > 0.5, `fitted Dice ${fit.dice}`);
    saveWeights(foldFile(foldDir(model, 0), 'best'), net.stateDict());
    torch.dispose([image, label]);
    net.dispose();
    for (const d of ['images', 'labels']) {
      mkdirSync(join(tmp, 'src', d), { recursive: true });
      for (const id of ['hippocampus_001', 'hippocampus_003', 'hippocampus_006'])
        copyFileSync(dataPath('msd-hippocampus', d, `${id}.nii.gz`), join(tmp, 'src', d, `${id}.nii.gz`));
    }
    dataset = await importPairedFolders(join(tmp, 'src/images'), join(tmp, 'src/labels'), join(tmp, 'dataset'), { name: 'hippo-small', channelNames: ['MRI'] });
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('writes an int8 model that runs in onnxruntime, keeps the plan, records the calibration, and agrees with fp32', async (t) => {
    const out = join(tmp, 'int8.onnx');
    const r = runMedseg([
      'compress',
      model,
      '--int8',
      '--calibration',
      dataset,
      '--calibration-cases',
      '2',
      '--calibrator',
      'percentile',
      '--out',
      out,
      '--timed-passes',
      '3',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /QLinear|Conv/);
    assert.match(r.stdout, /one network pass \[16, 16, 16\] in onnxruntime: fp32 [\d.]+ ms, int8 [\d.]+ ms/);
    const meta = readOnnxMetadata(readFileSync(out));
    assert.equal(JSON.parse(meta.medseg!).labels[1], 'anterior', "the plan's metadata is kept");
    const q = JSON.parse(meta[QUANTIZATION_METADATA_KEY]!);
    assert.deepEqual(q.calibrator, { kind: 'percentile', percentile: 99.99 });
    assert.equal(q.calibrationInputs, 2);
    assert.equal(JSON.parse(meta['medseg.calibration']!).cases.length, 2);
    // The fp32 export of the same fold, on a real patch the calibration did not see.
    const fp32 = join(tmp, 'fp32.onnx');
    assert.equal(runMedseg(['export', model, '--out', fp32, '--fold', '0']).status, 0);
    const x = (await hippocampusCrop([16, 16, 16], 'hippocampus_001')).image;
    const a = await logits(fp32, x);
    const b = await logits(out, x);
    const n = a.length / 3;
    let same = 0;
    for (let i = 0; i < n; i++) {
      const ka = [0, 1, 2].reduce((k, c) => (a[c * n + i]! > a[k * n + i]! ? c : k), 0);
      const kb = [0, 1, 2].reduce((k, c) => (b[c * n + i]! > b[k * n + i]! ? c : k), 0);
      if (ka === kb) same++;
    }
    x.dispose();
    assert.ok(same / n >= 0.99, `argmax agreement ${same / n}`);
    t.diagnostic(`${r.stdout.trim().split('\n').join(' | ')} | agreement ${((100 * same) / n).toFixed(2)} %`);
  });

  test('the int8 model as the network pass of whole-case prediction (preprocessing, sliding window, postprocessing): labels and Dice close to fp32', async (t) => {
    const out = join(tmp, 'int8-minmax.onnx');
    const r = runMedseg(['compress', model, '--int8', '--calibration', dataset, '--out', out, '--timed-passes', '0']);
    assert.equal(r.status, 0, r.stderr);
    const m = loadModel(model);
    const fp32 = new OnnxNetwork(exportLoadedFold(m, 0).bytes);
    const int8 = new OnnxNetwork(readFileSync(out));
    try {
      const id = 'hippocampus_001';
      const images = [await readVolume(dataPath('msd-hippocampus', 'images', `${id}.nii.gz`))];
      const ref = Uint8Array.from((await readVolume(dataPath('msd-hippocampus', 'labels', `${id}.nii.gz`))).data as ArrayLike<number>);
      const a = predictVolumes(m, images, { networks: [fp32] });
      const b = predictVolumes(m, images, { networks: [int8] });
      const la = a.labels.data as Uint8Array;
      const lb = b.labels.data as Uint8Array;
      let same = 0;
      for (let i = 0; i < la.length; i++) if (la[i] === lb[i]) same++;
      const da = diceScores(la, ref, 3);
      const db = diceScores(lb, ref, 3);
      const mean = (d: number[]) => (d[0]! + d[1]!) / 2;
      // The fixture net is fitted to one 16^3 crop, not trained: over the whole case it has many
      // near-tied voxels and a low Dice, so this checks the int8 pass inside the pipeline, not the
      // quality gate of a trained model (measured 98.75 % agreement, Dice 0.017/0.110 vs 0.017/0.106).
      assert.ok(same / la.length >= 0.97, `labels agree on ${same} of ${la.length}`);
      assert.ok(la.some((v) => v === 1) && la.some((v) => v === 2), 'both structures predicted');
      assert.ok(Math.abs(mean(db) - mean(da)) <= 0.01, `Dice fp32 ${da}, int8 ${db}`);
      t.diagnostic(
        `${id}: labels agree ${((100 * same) / la.length).toFixed(2)} %, Dice (anterior, posterior) fp32 ${da.map((d) => d.toFixed(3))}, int8 ${db.map((d) => d.toFixed(3))}; ${a.seconds.toFixed(2)} s vs ${b.seconds.toFixed(2)} s per case`,
      );
    } finally {
      fp32.dispose();
      int8.dispose();
      disposeModel(m);
    }
  });

  test('usage errors: no --int8, an --out that is not .onnx, a bad percentile', () => {
    const out = join(tmp, 'x.onnx');
    for (const args of [
      ['compress', model, '--calibration', dataset, '--out', out],
      ['compress', model, '--int8', '--calibration', dataset, '--out', join(tmp, 'x.bin')],
      ['compress', model, '--int8', '--calibration', dataset, '--out', out, '--percentile', '30'],
    ]) {
      const r = runMedseg(args);
      assert.equal(r.status, EXIT_USAGE, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/);
    }
    assert.ok(!existsSync(out));
  });
});
