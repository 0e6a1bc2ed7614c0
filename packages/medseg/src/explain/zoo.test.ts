/**
 * Every method on every architecture of the registry (small 2D configs, one
 * 16x16 image, one tile): the maps have the image's shape and
 * are finite, Grad-CAM's default layer exists on every architecture (UNet++
 * names its own), and nothing leaks (live tensor count back where it was).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { smallConfig } from '../testing/models.ts';
import { createNetwork, listArchitectures } from '../models/registry.ts';
import { explainImage, EXPLAIN_METHODS, plainLogits } from './explain-image.ts';
import { MedsegExplainError } from './errors.ts';

const WITH_ATTENTION = new Set(['attention-unet', 'transunet', 'swin-unetr', 'hybridnet']);

test('every method on every architecture: maps of the image shape, finite, no leaked tensors', () => {
  const spatial = [16, 16];
  const patch = [16, 16];
  for (const { name } of listArchitectures()) {
    torch.manualSeed(1);
    const net = createNetwork(smallConfig(name, 2, { deepSupervision: false, dropout: 0, extra: { window: 2 } })).eval();
    const image = torch.tidy(() => torch.randn([1, ...spatial]).keep());
    const region = torch.tidy(() => plainLogits(net, image, { patchSize: patch }).argmax(0).eq(1).float().keep());
    const before = torch.liveTensors();
    for (const method of EXPLAIN_METHODS) {
      const run = () => explainImage(net, image, region, { method, target: { classIndex: 1 }, patchSize: patch, steps: 4, window: [8, 8], stride: [8, 8] });
      if (method === 'attention' && !WITH_ATTENTION.has(name)) {
        assert.throws(run, MedsegExplainError, `${name} ${method}`);
        continue;
      }
      const e = run();
      for (const [mapName, m] of e.maps) {
        assert.deepEqual(m.shape, spatial, `${name} ${method} ${mapName}`);
        assert.ok(
          torch.tidy(() => m.isfinite().all().item()),
          `${name} ${method} ${mapName} finite`,
        );
      }
      torch.dispose([...e.maps.values()]);
    }
    assert.equal(torch.liveTensors(), before, `${name}: live tensors`);
    torch.dispose([image, region]);
    net.dispose();
  }
});
