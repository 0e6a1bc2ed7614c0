import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { disposeModel, loadModel } from './predict.ts';

test('loadModel: an explicit checkpoint a fold lacks, or a fold that does not exist, is NOT_FOUND naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-load-'));
  try {
    writeFixtureModel(dir, 'mri3d', [{ weights: { final: 1 } }]);
    const m = loadModel(dir);
    assert.deepEqual(m.folds, [0]); // best absent: the final weights
    disposeModel(m);
    assert.throws(
      () => loadModel(dir, { checkpoint: 'best' }),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND' && /model_best\.safetensors/.test(e.message),
    );
    assert.throws(
      () => loadModel(dir, { folds: [3] }),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND' && /fold_3/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
