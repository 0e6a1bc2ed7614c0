/**
 * Pretraining writes a folder that transfer learning reads: its encoder
 * tensors land in a fresh network (changed from their initial values),
 * everything else stays as initialised. Tiny images, a two-stage U-Net and a
 * small HybridNet, three steps each.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { writeNifti } from '../io/nifti.ts';
import { IDENTITY3 } from '../io/volume.ts';
import { encoderStateNames } from '../models/encoder-parts.ts';
import { createNetwork } from '../models/registry.ts';
import type { Plan } from '../plan/types.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { smallExtra } from '../testing/models.ts';
import { readPretrainedDescriptor } from '../train/ssl-folder.ts';
import { pretrainNetworkConfig } from '../train/ssl-pretrain.ts';
import { initializeWeights } from '../train/transfer.ts';
import { pretrainModel } from './pretrain.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-pretrain-'));
const images = join(tmp, 'images');
mkdirSync(images);
const plan: Plan = writeFixtureModel(join(tmp, 'fixture'), 'mri3d', []);

function snapshot(net: { stateDict(): Map<string, torch.Tensor> }): Map<string, number[]> {
  return new Map([...net.stateDict()].map(([k, t]) => [k, Array.from(t.toTypedArray() as Float32Array)]));
}

/** A 20^3 one-channel volume at 1 mm. */
function writeCube(path: string, data: Float32Array): Promise<void> {
  return writeNifti(path, { data, size: [20, 20, 20], channels: 1, spacing: [1, 1, 1], origin: [0, 0, 0], direction: [...IDENTITY3], meta: {} });
}

test('setup: three unlabelled 20^3 images', async () => {
  for (let i = 0; i < 3; i++) {
    const data = new Float32Array(20 ** 3);
    for (let k = 0; k < data.length; k++) data[k] = 100 + 20 * Math.sin(k * 0.37 + i) + (k % 20 > 10 ? 30 : 0);
    await writeCube(join(images, `img_${i}.nii.gz`), data);
  }
});

for (const [method, architecture] of [
  ['mim', 'unet'],
  ['contrastive', 'unet'],
  ['mim', 'hybridnet'],
] as const) {
  test(`pretrain ${method} (${architecture}) -> train --init encoder: the encoder changes, the head stays as initialised`, async () => {
    const p: Plan = structuredClone(plan);
    p.batchSize = 2;
    if (architecture === 'hybridnet') p.network = { ...p.network, architecture, extra: { ...smallExtra('hybridnet', 3), transformerStages: 1 } };
    const out = join(tmp, `pre-${method}-${architecture}`);
    const r = await pretrainModel({ images, out, method, plan: p, steps: 3, seed: 3, log: () => {} });
    assert.ok(existsSync(join(out, 'pretrained.safetensors')) && existsSync(join(out, 'plan.json')));
    const d = readPretrainedDescriptor(out);
    assert.equal(d.kind, method === 'contrastive' ? 'simclr' : architecture === 'unet' ? 'inpainting' : 'mae');
    assert.equal(d.steps, 3);
    assert.equal(d.images, 3);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')).network, p.network);

    // Pretraining moved the weights away from the network it started from (same seed).
    torch.manualSeed(3);
    const start = snapshot(createNetwork(method === 'mim' ? pretrainNetworkConfig(p.network) : p.network));
    torch.manualSeed(99);
    const fresh = createNetwork(p.network);
    const before = snapshot(fresh);
    const encoder = encoderStateNames(fresh);
    assert.deepEqual([...encoder].sort(), [...d.encoderTensors].sort());
    const rep = initializeWeights(fresh, { source: out, part: 'encoder' });
    assert.equal(rep.file, r.weightsFile);
    assert.deepEqual(new Set(rep.loaded), encoder);
    const after = snapshot(fresh);
    let changedFromStart = 0;
    for (const [k, v] of after) {
      if (encoder.has(k)) {
        assert.notDeepEqual(v, before.get(k), `${k} was not copied`);
        if (v.some((x, i) => x !== start.get(k)![i])) changedFromStart++;
      } else assert.deepEqual(v, before.get(k), `${k} is not part of the encoder and must stay as initialised`);
    }
    assert.ok(changedFromStart > 0, 'pretraining left every encoder tensor at its initial value');
    assert.ok(Number.isFinite(r.result.lastLoss));
    fresh.dispose();
  });
}

test('a folder of images without a plan is refused with a clear error', async () => {
  await assert.rejects(pretrainModel({ images, out: join(tmp, 'no-plan'), method: 'mim', steps: 1, log: () => {} }), /needs --plan/);
});

test('a folder of two-channel images (<id>_0000, <id>_0001) pretrains a two-channel plan; a missing channel file is refused', async () => {
  const dir = join(tmp, 'images-2ch');
  mkdirSync(dir);
  for (let i = 0; i < 2; i++) {
    for (let c = 0; c < 2; c++) {
      const data = new Float32Array(20 ** 3).map((_, k) => 50 * c + 20 * Math.sin(k * 0.31 + i));
      await writeCube(join(dir, `case${i}_000${c}.nii.gz`), data);
    }
  }
  const p: Plan = structuredClone(plan);
  p.channels = ['T1', 'T2'];
  p.normalization = [p.normalization[0]!, p.normalization[0]!];
  p.network = { ...p.network, inChannels: 2 };
  const lines: string[] = [];
  const r = await pretrainModel({ images: dir, out: join(tmp, 'pre-2ch'), method: 'mim', plan: p, steps: 1, log: (l) => lines.push(l) });
  assert.equal(readPretrainedDescriptor(r.dir).images, 2);
  assert.match(lines.join('\n'), /pretrain: 2 images/);

  rmSync(join(dir, 'case1_0001.nii.gz'));
  await assert.rejects(
    pretrainModel({ images: dir, out: join(tmp, 'pre-2ch-bad'), method: 'mim', plan: p, steps: 1, log: () => {} }),
    /case1 lacks channel 0001/,
  );
});
