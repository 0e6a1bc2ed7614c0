/**
 * `medseg export` as a user runs it on a small model folder of two folds:
 * the ONNX file of one fold and the folder + manifest of all folds, each run
 * by onnxruntime-node and compared with the libtorch forward of the same
 * weights on a real hippocampus patch; the plan in the metadata; exit codes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { runMedseg } from '../../testing/cli.ts';
import { writeFixtureModel } from '../../testing/model-fixture.ts';
import { hippocampusCrop } from '../../testing/models.ts';
import { disposeModel, loadModel } from '../../infer/predict.ts';
import { readOnnxMetadata } from '../../deploy/onnx-builder.ts';
import type { OnnxModelInfo } from '../../deploy/export-model.ts';
import type { Plan } from '../../plan/types.ts';
import { EXIT_BAD_INPUT, EXIT_USAGE } from '../errors.ts';

const STACK = /\n\s+at .+:\d+:\d+/;

/** Max abs difference between onnxruntime on `file` and libtorch fold `fold` of the model folder, on x. */
async function parity(file: string, modelDir: string, fold: number, x: Tensor): Promise<number> {
  const session = await ort.InferenceSession.create(file);
  const got = (await session.run({ image: new ort.Tensor('float32', x.toFloat32Array(), x.shape) })).logits!.data as Float32Array;
  await session.release();
  const model = loadModel(modelDir, { folds: [fold] });
  try {
    const want = torch.tidy(() => (torch.noGrad(() => model.nets[0]!.forward(x)) as Tensor).toFloat32Array());
    assert.equal(got.length, want.length);
    let m = 0;
    for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!));
    return m;
  } finally {
    disposeModel(model);
  }
}

describe('medseg export', () => {
  let tmp: string;
  let model: string;
  let plan: Plan;
  let patch: Tensor;
  let pair: Tensor;
  let other: Tensor;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-export-cli-'));
    model = join(tmp, 'model');
    plan = writeFixtureModel(model, 'mri3d', [{ weights: { best: 'random' } }, { weights: { final: 'random' } }]);
    patch = (await hippocampusCrop([16, 16, 16])).image.keep();
    pair = torch.cat([patch, (await hippocampusCrop([16, 16, 16], 'hippocampus_003')).image]).keep();
    other = (await hippocampusCrop([24, 32, 16], 'hippocampus_006')).image.keep();
  });
  after(() => {
    torch.dispose([patch, pair, other]);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('one fold: an .onnx file that onnxruntime runs like libtorch (batch 1, 2, another size) and that carries the plan', async () => {
    const out = join(tmp, 'fold0.onnx');
    const r = runMedseg(['export', model, '--out', out, '--fold', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { ok: boolean; path: string; files: { fold: number; sha256: string }[]; dynamicAxes: string[] };
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.files.map((f) => f.fold),
      [0],
    );
    assert.deepEqual(result.dynamicAxes, ['batch', 'd', 'h', 'w']);
    for (const x of [patch, pair, other]) {
      const diff = await parity(out, model, 0, x);
      assert.ok(diff <= 1e-4, `[${x.shape}]: max abs difference ${diff}`);
    }
    const meta = readOnnxMetadata(readFileSync(out));
    const info = JSON.parse(meta.medseg!) as OnnxModelInfo;
    assert.equal(info.format, 'medseg.onnx/1');
    assert.equal(meta['medseg.architecture'], 'unet');
    assert.equal(info.medsegVersion, JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
    assert.deepEqual(info.network, plan.network);
    assert.deepEqual(info.patchSize, plan.patchSize);
    assert.deepEqual(info.targetSpacing, plan.targetSpacing);
    assert.deepEqual(info.normalization, plan.normalization);
    assert.deepEqual(info.labels, plan.labels);
    assert.deepEqual(info.channels, plan.channels);
    assert.equal(info.inference.mirror, plan.inference.mirror);
    assert.deepEqual(info.inference.mirrorAxes, plan.inference.mirror ? [0, 1, 2] : []);
    assert.deepEqual(info.input, { name: 'image', layout: 'N,C,D,H,W', shape: ['batch', 1, 'd', 'h', 'w'] });
    assert.deepEqual(info.output.shape, ['batch', 3, 'd', 'h', 'w']);
    assert.deepEqual(info.fixedAxes, []);
    assert.equal(info.fold, 0);
    assert.equal(info.weights, 'fold_0/model_best.safetensors');
  });

  test('all folds: a folder with fold_<k>/model.onnx and a manifest whose checksums match; each fold runs like its libtorch twin', async () => {
    const out = join(tmp, 'ensemble');
    const r = runMedseg(['export', model, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /fold 0: .*fold_0\/model\.onnx/);
    assert.match(r.stdout, /manifest: /);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
      format: string;
      models: { fold: number; file: string; sha256: string; weights: string }[];
      patchSize: number[];
    };
    assert.equal(manifest.format, 'medseg.onnx-ensemble/1');
    assert.deepEqual(manifest.patchSize, plan.patchSize);
    assert.deepEqual(
      manifest.models.map((m) => [m.fold, m.file, m.weights]),
      [
        [0, 'fold_0/model.onnx', 'fold_0/model_best.safetensors'],
        [1, 'fold_1/model.onnx', 'fold_1/model_final.safetensors'],
      ],
    );
    for (const m of manifest.models) {
      const file = join(out, m.file);
      assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), m.sha256);
      const diff = await parity(file, model, m.fold, pair);
      assert.ok(diff <= 1e-4, `fold ${m.fold}: max abs difference ${diff}`);
    }
    // The folds differ, so the check above would notice swapped files.
    assert.ok((await parity(join(out, 'fold_1/model.onnx'), model, 0, patch)) > 1e-3);
  });

  test('usage and input errors: several folds into one .onnx (64), no model folder (2), a missing fold (2), a bad fold (64)', () => {
    let r = runMedseg(['export', model, '--out', join(tmp, 'all.onnx')]);
    assert.equal(r.status, EXIT_USAGE, r.stderr);
    assert.match(r.stderr, /2 folds export to a folder/);
    assert.ok(!existsSync(join(tmp, 'all.onnx')));
    r = runMedseg(['export', join(tmp, 'nothing'), '--out', join(tmp, 'x.onnx')]);
    assert.equal(r.status, EXIT_BAD_INPUT, r.stderr);
    assert.match(r.stderr, /model folder does not exist|not a medseg model folder/);
    r = runMedseg(['export', model, '--out', join(tmp, 'x.onnx'), '--fold', '7']);
    assert.equal(r.status, EXIT_BAD_INPUT, r.stderr);
    assert.match(r.stderr, /no fold_7/);
    r = runMedseg(['export', model, '--out', join(tmp, 'x.onnx'), '--fold', 'two']);
    assert.equal(r.status, EXIT_USAGE, r.stderr);
    for (const s of [r.stderr]) assert.doesNotMatch(s, STACK);
  });
});
