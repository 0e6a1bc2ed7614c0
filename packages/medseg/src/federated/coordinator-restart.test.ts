/**
 * A coordinator process killed with SIGKILL and started again on the same
 * folder resumes after the last aggregated round: the open round's weights
 * are those it had, the updates of the interrupted round are gone (the sites
 * send them again), and the federation continues.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnMedseg } from '../testing/federation.ts';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { seededRandom } from '../util/random.ts';
import { UPDATE_METADATA } from './protocol.ts';
import { CoordinatorClient } from './site-client.ts';
import { decodeWeights, encodeWeights } from './weights.ts';
import { createNetwork } from '../models/registry.ts';
import { sharedShapes } from './weights.ts';

test("a coordinator killed with SIGKILL and restarted resumes at the open round with the last round's weights", { timeout: 90_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-coord-kill-'));
  try {
    const plan = writeFixtureModel(join(tmp, 'fixture'), 'mri3d', []);
    const planPath = join(tmp, 'plan.json');
    writeFileSync(planPath, JSON.stringify(plan));
    const keys = { a: 'key-of-a-0123456789abcdef', b: 'key-of-b-0123456789abcdef' };
    writeFileSync(join(tmp, 'keys.json'), JSON.stringify(keys));
    const net = createNetwork(plan.network);
    const shapes = sharedShapes(net);
    net.dispose();
    const rnd = seededRandom(3);
    const update = (n: number) =>
      encodeWeights(new Map([...shapes].map(([k, s]) => [k, Float32Array.from({ length: s.reduce((x, y) => x * y, 1) }, () => rnd() * 0.01)])), shapes, {
        [UPDATE_METADATA.examples]: String(n),
      });
    const serve = () =>
      spawnMedseg([
        'federate',
        'serve',
        '--out',
        join(tmp, 'coordinator'),
        '--plan',
        planPath,
        '--sites',
        join(tmp, 'keys.json'),
        '--rounds',
        '3',
        '--linger',
        '0',
      ]);

    const first = serve();
    const [, url1] = await first.waitFor(/listening on (\S+)/);
    const a1 = new CoordinatorClient(url1!, 'a', keys.a);
    const b1 = new CoordinatorClient(url1!, 'b', keys.b);
    await a1.submit(1, update(1));
    assert.deepEqual(await b1.submit(1, update(2)), { aggregated: true });
    const round2 = await a1.weights(2);
    await a1.submit(2, update(1)); // pending when the coordinator dies
    assert.equal((await a1.status()).updates, 1);
    first.child.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');

    const second = serve();
    const [, url2] = await second.waitFor(/listening on (\S+)/);
    assert.match(second.stderr, /resuming after round 1 of 3/);
    const a2 = new CoordinatorClient(url2!, 'a', keys.a);
    const b2 = new CoordinatorClient(url2!, 'b', keys.b);
    assert.deepEqual(await a2.status(), { round: 2, rounds: 3, finished: false, submitted: false, updates: 0 });
    assert.deepEqual(decodeWeights(await a2.weights(2), shapes, 'after').values, decodeWeights(round2, shapes, 'before').values);
    await assert.rejects(a2.weights(1), /ROUND_CLOSED|closed/);
    for (const r of [2, 3]) {
      await a2.submit(r, update(1));
      assert.deepEqual(await b2.submit(r, update(1)), { aggregated: true });
    }
    const done = await second.exited;
    assert.equal(done.code, 0, second.stderr);
    assert.match(second.stderr, /federation finished after 3 rounds/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
