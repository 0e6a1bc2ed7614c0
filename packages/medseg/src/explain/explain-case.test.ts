/**
 * A case explained with a model folder, in-process: on a grid that
 * preprocessing leaves as it is (2D, spacing 1, nothing cropped) the heat map
 * on the input grid is exactly the network-grid map of explainImage; a box
 * on the input grid becomes the region; a missing layer is a typed error
 * listing the layers there are.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as torch from '@medseg/torch';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { dataPath } from '../testing/data.ts';
import { disposeModel, loadModel, prepareInput, type LoadedModel } from '../infer/predict.ts';
import { readVolume } from '../io/read.ts';
import type { Volume } from '../io/volume.ts';
import { explainVolumes } from './explain-case.ts';
import { explainImage, plainLogits } from './explain-image.ts';
import { MedsegExplainError } from './errors.ts';

describe('explainVolumes', () => {
  let tmp: string;
  let model: LoadedModel;
  let slice: Volume;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'medseg-explain-case-'));
    writeFixtureModel(join(tmp, 'm'), 'gray2d', [{ weights: { best: 'random' } }]);
    model = loadModel(join(tmp, 'm'));
    const em = await readVolume(dataPath('isbi2012-em', 'images', '3.png'));
    // A 30 x 26 block of the slice.
    const data = new Uint8Array(30 * 26);
    for (let y = 0; y < 26; y++) for (let x = 0; x < 30; x++) data[y * 30 + x] = em.data[(150 + y) * em.size[0] + 100 + x]!;
    slice = { ...em, data, size: [30, 26, 1] };
  });
  after(() => {
    disposeModel(model);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('on an unresampled 2D grid the heat map is the network-grid map itself', () => {
    const c = prepareInput(model.plan, [slice]).case;
    assert.deepEqual(c.shape, [1, 26, 30], 'preprocessing keeps the grid');
    const image = torch.tensor(c.data, [1, 26, 30]);
    const predicted = plainLogits(model.nets[0]!, image, { patchSize: [16, 16] }).argmax(0);
    // The foreground class the untrained net predicts most.
    const cls = [1, 2].sort((a, b) => predicted.eq(b).sum().item() - predicted.eq(a).sum().item())[0]!;
    const e = explainVolumes(model, [slice], { method: 'gradcampp', classIndex: cls, faithfulness: false });
    assert.deepEqual(e.heat.size, slice.size);
    const expected = torch.tidy(() => {
      const region = predicted.eq(cls).float();
      assert.ok(region.sum().item() > 0);
      assert.equal(region.sum().item(), e.region.voxels);
      return explainImage(model.nets[0]!, image, region, { method: 'gradcampp', target: { classIndex: cls }, patchSize: [16, 16] })
        .maps.get('gradcampp')!
        .toFloat32Array();
    });
    const heat = e.heat.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < heat.length; i++) diff = Math.max(diff, Math.abs(heat[i]! - expected[i]!));
    assert.ok(Math.max(...expected) > 0 && diff < 1e-5, `max diff ${diff}`);
    assert.equal(e.region.source, 'predicted mask');
    assert.ok(e.massInRegion >= 0 && e.massInRegion <= 1);
    torch.dispose([image, predicted]);
  });

  test('a box on the input grid is the region; a box outside the image and a missing layer are typed errors', () => {
    const e = explainVolumes(model, [slice], { method: 'gradcam', box: { start: [4, 5, 0], end: [12, 9, 1] }, faithfulness: false });
    assert.deepEqual(e.region, { source: 'box', voxels: 8 * 4 });
    assert.throws(
      () => explainVolumes(model, [slice], { method: 'gradcam', box: { start: [40, 0, 0], end: [50, 5, 1] }, faithfulness: false }),
      (err: unknown) => err instanceof MedsegExplainError && /holds no voxel/.test(err.message),
    );
    assert.throws(
      () => explainVolumes(model, [slice], { method: 'gradcam', classIndex: 3, faithfulness: false }),
      (err: unknown) => err instanceof MedsegExplainError && /class 3 is not one of the model's classes 0\.\.2/.test(err.message),
    );
    assert.throws(
      () => explainVolumes(model, [slice], { method: 'gradcam', layer: 'decoder.9', faithfulness: false }),
      (err: unknown) => err instanceof MedsegExplainError && err.code === 'NO_LAYER' && /layers include: .*decoder\.0/.test(err.message),
    );
  });
});
