import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FolderEvaluation } from '../../eval/evaluate-folder.ts';
import { pooledCalibration } from './evaluate.ts';

const rel = (confidence: number[], accuracy: number[], count: number[]) => ({ bins: count.length, confidence, accuracy, count, ece: 0 });

test('pooledCalibration adds bin counts and count-weights confidence and accuracy (empty bins ignored)', () => {
  const ev = {
    evaluations: [
      { classes: [{ reliability: rel([0.2, 0.8], [0.1, 0.9], [10, 30]) }] },
      { classes: [{ reliability: rel([0.4, NaN], [0.3, NaN], [10, 0]) }, {}] },
    ],
  } as unknown as FolderEvaluation;
  const p = pooledCalibration(ev)!;
  assert.deepEqual(p.count, [20, 30]);
  // by hand: (10*0.2 + 10*0.4) / 20 = 0.3; (10*0.1 + 10*0.3) / 20 = 0.2
  assert.ok(Math.abs(p.confidence[0]! - 0.3) < 1e-12 && Math.abs(p.confidence[1]! - 0.8) < 1e-12, String(p.confidence));
  assert.ok(Math.abs(p.accuracy[0]! - 0.2) < 1e-12 && Math.abs(p.accuracy[1]! - 0.9) < 1e-12, String(p.accuracy));
  assert.equal(pooledCalibration({ evaluations: [{ classes: [{}] }] } as unknown as FolderEvaluation), null);
});
