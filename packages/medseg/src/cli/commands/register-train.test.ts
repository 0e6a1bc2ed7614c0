/**
 * `medseg register-train` on three MSD hippocampus cases: a run killed with
 * SIGKILL after its first checkpoint resumes to the whole budget, the model
 * it writes drives `medseg register --model`, and a folder that holds a
 * model already, or none to resume, is refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readDataset } from '../../data/dataset.ts';
import { importMsdHippocampus } from '../../data/import.ts';
import { runMedseg } from '../../testing/cli.ts';
import { dataPath } from '../../testing/data.ts';
import { spawnMedseg } from '../../testing/federation.ts';
import { EXIT_OK } from '../errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-register-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test(
  'register-train: a SIGKILLed run resumes from its checkpoint to the whole budget with its supervision, and register --model uses the model',
  { timeout: 240_000 },
  async () => {
    const dataset = join(tmp, 'dataset');
    await importMsdHippocampus(dataPath('msd-hippocampus'), dataset, { limit: 3 });
    const ids = readDataset(dataset).training.map((c) => c.id);
    const model = join(tmp, 'model');
    const args = ['register-train', dataset, '--out', model, '--atlas', ids[0]!, '--supervised', '--checkpoint-seconds', '2'];

    const first = spawnMedseg([...args, '--minutes', '0.25']);
    await first.waitFor(/checkpoint at step (\d+)/, 120_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const killed = JSON.parse(readFileSync(join(model, 'training.json'), 'utf8')) as { steps: number; seconds: number; pairs: number; labels: number[] };
    assert.equal(killed.pairs, 2);
    assert.deepEqual(killed.labels, [1, 2]);
    assert.ok(killed.seconds < 15, `killed after ${killed.seconds} s`);

    const again = runMedseg([...args, '--minutes', '0.25'], { timeoutMs: 60_000 });
    assert.notEqual(again.status, EXIT_OK);
    assert.match(again.stderr, /holds a registration model already/);

    const resumed = runMedseg(['register-train', dataset, '--out', model, '--resume', '--json'], { timeoutMs: 120_000 });
    assert.equal(resumed.status, EXIT_OK, resumed.stderr);
    const r = JSON.parse(resumed.stdout) as { steps: number; seconds: number; loss: number };
    assert.ok(r.steps > killed.steps && r.seconds >= 14.5 && r.seconds < 20, `resumed to ${r.steps} steps, ${r.seconds} s`);
    assert.ok(Number.isFinite(r.loss));
    assert.equal(
      (JSON.parse(readFileSync(join(model, 'training.json'), 'utf8')) as { supervised: boolean }).supervised,
      true,
      'the resumed run keeps its supervision',
    );

    const c = readDataset(dataset).training;
    const registered = runMedseg([
      'register',
      c[1]!.imagePaths[0]!,
      c[0]!.imagePaths[0]!,
      '--moving-labels',
      c[0]!.labelPath!,
      '--model',
      model,
      '--out',
      join(tmp, 'learned'),
      '--json',
    ]);
    assert.equal(registered.status, EXIT_OK, registered.stderr);
    assert.equal((JSON.parse(registered.stdout) as { method: string }).method, 'model');
    assert.ok(existsSync(join(tmp, 'learned', 'warped-labels.nii.gz')));
  },
);

test('register-train --resume of a folder without a model is refused', { timeout: 60_000 }, () => {
  const empty = runMedseg(['register-train', join(tmp, 'dataset'), '--out', join(tmp, 'nothing'), '--resume']);
  assert.notEqual(empty.status, EXIT_OK);
  assert.match(empty.stderr, /nothing to resume/);
});
