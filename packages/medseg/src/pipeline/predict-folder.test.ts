import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { tileStarts } from '../infer/sliding-window.ts';
import { dataPath } from '../testing/data.ts';
import { predictPath } from './predict-folder.ts';

test('the progress reporter receives the tiles of every fold of a case, up to their total', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-tiles-'));
  try {
    writeFixtureModel(join(dir, 'model'), 'mri3d', [{ weights: { best: 'random' } }, { weights: { final: 'random' } }]);
    const events: { kind: string; n: number; label?: string }[] = [];
    const image = dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz');
    await predictPath({
      model: join(dir, 'model'),
      input: image,
      out: join(dir, 'out'),
      progress: {
        start: (n, label) => events.push({ kind: 'start', n, label }),
        update: (n) => events.push({ kind: 'update', n }),
        stop: () => events.push({ kind: 'stop', n: 0 }),
      },
    });
    // 35 x 51 x 35 voxels at 1 mm, 16^3 patches, half-patch steps; two folds.
    const tiles = [35, 51, 35].map((s) => tileStarts(s, 16, 0.5).length).reduce((a, b) => a * b, 1);
    assert.equal(tiles, 96);
    assert.deepEqual(events[0], { kind: 'start', n: 2 * tiles, label: 'case 1/1 hippocampus_001 (2 folds), tiles' });
    const updates = events.filter((e) => e.kind === 'update').map((e) => e.n);
    assert.deepEqual(
      updates,
      Array.from({ length: 2 * tiles }, (_, i) => i + 1),
    );
    assert.equal(events.at(-1)!.kind, 'stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
