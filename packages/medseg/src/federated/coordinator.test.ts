/**
 * The coordinator's HTTP API with scripted sites (no training): bad requests
 * get typed 4xx answers and the coordinator keeps serving and aggregating
 * exactly; a site that goes silent mid-round does not stall the round (the
 * timeout closes it with the minimum of updates), its late update is refused
 * and it continues with the open round; secure aggregation sums masked
 * updates to the case-weighted mean, also when a cohort site drops out.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { writeFixtureModel } from '../testing/model-fixture.ts';
import { seededRandom } from '../util/random.ts';
import { Coordinator, type CoordinatorOptions } from './coordinator.ts';
import { coordinatorServer } from './coordinator-server.ts';
import { FederationError, type FederationErrorCode } from './errors.ts';
import { maskRound, SITE_HEADER, UPDATE_METADATA } from './protocol.ts';
import { maskVector, newMaskingKeys } from './secure-aggregation.ts';
import { CoordinatorClient } from './site-client.ts';
import { decodeWeights, encodeWeights, flattenWeights, type WeightValues } from './weights.ts';

const rnd = seededRandom(5);

async function start(
  dir: string,
  sites: string[],
  o: Partial<CoordinatorOptions> = {},
): Promise<{ c: Coordinator; app: FastifyInstance; url: string; client: (s: string) => CoordinatorClient; close: () => Promise<void> }> {
  const plan = writeFixtureModel(join(dir, 'fixture'), 'mri3d', []);
  const c = new Coordinator({
    dir: join(dir, 'coordinator'),
    plan,
    algorithm: 'fedavg',
    rounds: 3,
    mu: 0,
    localEpochs: 1,
    sites: new Map(sites.map((s) => [s, `key-of-${s}-0123456789abcdef`])),
    roundTimeoutMs: 60_000,
    secureAggregation: false,
    log: () => {},
    ...o,
  });
  await c.start();
  const app = coordinatorServer(c);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    c,
    app,
    url,
    client: (s) => new CoordinatorClient(url, s, `key-of-${s}-0123456789abcdef`),
    close: async () => {
      await app.close();
      c.close();
    },
  };
}

/** Small random deltas for every shared tensor. */
function randomDelta(c: Coordinator): WeightValues {
  return new Map([...c.shared].map(([n, s]) => [n, Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => (rnd() - 0.5) * 0.02)]));
}

async function refused(p: Promise<unknown>, code: FederationErrorCode, status: number): Promise<void> {
  await assert.rejects(p, (e) => e instanceof FederationError && e.code === code && e.statusCode === status, `expected ${code}`);
}

async function raw(url: string, path: string, site: string, key: string | null, body?: Uint8Array | string, type = 'application/octet-stream') {
  const headers: Record<string, string> = { [SITE_HEADER]: site, 'content-type': type };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(url + path, { method: body === undefined ? 'GET' : 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as { code: string; message: string } };
}

function expectMean(before: WeightValues, after: WeightValues, deltas: { n: number; d: WeightValues }[], tol: number): void {
  const total = deltas.reduce((s, x) => s + x.n, 0);
  let worst = 0;
  for (const [name, g] of before) {
    const a = after.get(name)!;
    for (let i = 0; i < g.length; i++) {
      const want = g[i]! + deltas.reduce((s, x) => s + (x.n / total) * x.d.get(name)![i]!, 0);
      worst = Math.max(worst, Math.abs(a[i]! - want));
    }
  }
  assert.ok(worst <= tol, `largest difference from the case-weighted mean ${worst}`);
}

test('bad requests get typed 4xx errors; the coordinator keeps serving and aggregates the good updates exactly', { timeout: 60_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-coord-'));
  const h = await start(tmp, ['a', 'b']);
  try {
    const a = h.client('a');
    const key = 'key-of-a-0123456789abcdef';
    assert.equal((await raw(h.url, '/status', 'a', null)).body.code, 'UNAUTHORIZED');
    const wrongKey = await raw(h.url, '/status', 'a', 'key-of-b-0123456789abcdef');
    assert.deepEqual([wrongKey.status, wrongKey.body.code], [401, 'UNAUTHORIZED']);
    assert.equal((await raw(h.url, '/status', 'mallory', key)).status, 401);
    await refused(a.weights(2), 'ROUND_NOT_OPEN', 409);
    assert.equal((await raw(h.url, '/rounds/abc/weights', 'a', key)).body.code, 'BAD_REQUEST');

    const global = decodeWeights(await a.weights(1), h.c.shared, 'global').values;
    const d = randomDelta(h.c);
    const good = encodeWeights(d, h.c.shared, { [UPDATE_METADATA.examples]: '2' });
    await refused(a.submit(2, good), 'ROUND_NOT_OPEN', 409);
    await refused(a.submit(1, good.subarray(0, good.length - 100)), 'TRUNCATED_WEIGHTS', 400);
    const corrupt = Buffer.from(good);
    corrupt.write('{"not json', 8);
    await refused(a.submit(1, corrupt), 'BAD_WEIGHTS', 400);
    const [first, shape] = [...h.c.shared][0]!;
    const reshaped = new Map(h.c.shared);
    reshaped.set(first, [shape.reduce((x, y) => x * y, 1)]);
    await refused(a.submit(1, encodeWeights(d, reshaped, { [UPDATE_METADATA.examples]: '2' })), 'WRONG_TENSORS', 400);
    const missing = new Map(d);
    missing.delete(first);
    await refused(a.submit(1, encodeWeights(missing, h.c.shared, { [UPDATE_METADATA.examples]: '2' })), 'WRONG_TENSORS', 400);
    const nan = new Map(d);
    nan.set(
      first,
      Float32Array.from(d.get(first)!, (v, i) => (i === 3 ? Number.NaN : v)),
    );
    await refused(a.submit(1, encodeWeights(nan, h.c.shared, { [UPDATE_METADATA.examples]: '2' })), 'NOT_FINITE', 400);
    await refused(a.submit(1, encodeWeights(d, h.c.shared, {})), 'BAD_REQUEST', 400);
    await refused(a.submit(1, encodeWeights(d, h.c.shared, { [UPDATE_METADATA.examples]: '-1' })), 'BAD_REQUEST', 400);
    const huge = await raw(h.url, '/rounds/1/update', 'a', key, new Uint8Array(good.length * 2 + 8192));
    assert.deepEqual([huge.status, huge.body.code], [413, 'TOO_LARGE']);
    const json = await raw(h.url, '/rounds/1/update', 'a', key, '{"weights": 1}', 'application/json');
    assert.deepEqual([json.status, json.body.code], [400, 'BAD_REQUEST']);
    assert.equal((await raw(h.url, '/nowhere', 'a', key)).status, 404);

    // Still serving: nothing of the refused requests counted.
    assert.deepEqual(await a.status(), { round: 1, rounds: 3, finished: false, submitted: false, updates: 0 });
    assert.deepEqual(await a.submit(1, good), { aggregated: false });
    await refused(a.submit(1, good), 'DUPLICATE_UPDATE', 409);
    const db = randomDelta(h.c);
    assert.deepEqual(await h.client('b').submit(1, encodeWeights(db, h.c.shared, { [UPDATE_METADATA.examples]: '5' })), { aggregated: true });
    await refused(a.submit(1, good), 'ROUND_CLOSED', 409);
    assert.equal((await a.status()).round, 2);
    expectMean(
      global,
      decodeWeights(await a.weights(2), h.c.shared, 'global').values,
      [
        { n: 2, d },
        { n: 5, d: db },
      ],
      1e-7,
    );
  } finally {
    await h.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test(
  'a site silent mid-round does not stall the round: the timeout closes it with the minimum of updates, and the site rejoins the open round',
  { timeout: 60_000 },
  async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'medseg-coord-'));
    const h = await start(tmp, ['a', 'b', 'c'], { minUpdates: 2, roundTimeoutMs: 600 });
    try {
      const [a, b, c] = ['a', 'b', 'c'].map((s) => h.client(s)) as [CoordinatorClient, CoordinatorClient, CoordinatorClient];
      const update = (n: number) => encodeWeights(randomDelta(h.c), h.c.shared, { [UPDATE_METADATA.examples]: String(n) });
      await c.weights(1); // c starts round 1, then goes silent
      await a.submit(1, update(1));
      // One update is below the minimum: the round outlives its timeout.
      await new Promise((r) => setTimeout(r, 900));
      assert.equal((await a.status()).round, 1);
      // The second closes it at once (the timeout has passed).
      assert.deepEqual(await b.submit(1, update(1)), { aggregated: true });
      assert.equal(h.c.history[0]!.closedBy, 'timeout');
      assert.deepEqual(h.c.history[0]!.sites.map((s) => s.site).sort(), ['a', 'b']);
      await refused(c.submit(1, update(1)), 'ROUND_CLOSED', 409);
      // c rejoins: the open round's weights, and its update counts there.
      assert.deepEqual(await c.status(), { round: 2, rounds: 3, finished: false, submitted: false, updates: 0 });
      await c.weights(2);
      await c.submit(2, update(1));
      await a.submit(2, update(1));
      const t0 = Date.now();
      while ((await a.status()).round === 2) await new Promise((r) => setTimeout(r, 50));
      const waited = Date.now() - t0;
      assert.ok(waited < 3000, `round 2 closed ${waited} ms after its second update`);
      assert.deepEqual(h.c.history[1]!.sites.map((s) => s.site).sort(), ['a', 'c']);
    } finally {
      await h.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);

test(
  'secure aggregation: the masked updates sum to the case-weighted mean, and a cohort site that drops out is masked out in a new attempt',
  { timeout: 60_000 },
  async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'medseg-coord-'));
    const h = await start(tmp, ['a', 'b', 'c'], { secureAggregation: true, roundTimeoutMs: 700 });
    try {
      const names = ['a', 'b', 'c'];
      const examples: Record<string, number> = { a: 2, b: 3, c: 4 };
      const keys = Object.fromEntries(names.map((s) => [s, newMaskingKeys()]));
      const deltas = Object.fromEntries(names.map((s) => [s, randomDelta(h.c)]));
      const clients = Object.fromEntries(names.map((s) => [s, h.client(s)]));
      const sendMasked = async (site: string, round: number) => {
        const cohort = await clients[site]!.cohort(round);
        const total = cohort.sites.reduce((s, x) => s + x.examples, 0);
        const flat = flattenWeights(deltas[site]!, h.c.shared);
        const peers = cohort.sites.filter((x) => x.site !== site).map((x) => ({ id: x.site, publicKey: Buffer.from(x.publicKey, 'base64') }));
        const masked = maskVector(
          flat.map((v) => (v * examples[site]!) / total),
          { id: site, keys: keys[site]! },
          peers,
          maskRound(round, cohort.attempt),
        );
        return clients[site]!.submitMasked(round, cohort.attempt, masked);
      };
      // Round 1: all three.
      const g0 = decodeWeights(await clients.a!.weights(1), h.c.shared, 'g').values;
      await refused(clients.a!.cohort(1), 'NOT_IN_ROUND', 409);
      for (const s of names) await clients[s]!.submitKey(1, keys[s]!.publicKey.toString('base64'), examples[s]!);
      await refused(clients.a!.submit(1, encodeWeights(deltas.a!, h.c.shared, { [UPDATE_METADATA.examples]: '2' })), 'BAD_REQUEST', 400);
      await sendMasked('a', 1);
      await sendMasked('b', 1);
      assert.deepEqual(await sendMasked('c', 1), { aggregated: true });
      const g1 = decodeWeights(await clients.a!.weights(2), h.c.shared, 'g').values;
      expectMean(
        g0,
        g1,
        names.map((s) => ({ n: examples[s]!, d: deltas[s]! })),
        3 / 2 ** 24,
      );
      // Round 2: c sends its key, then drops out; at the timeout a and b are the cohort of attempt 2.
      for (const s of names) await clients[s]!.submitKey(2, keys[s]!.publicKey.toString('base64'), examples[s]!);
      await sendMasked('a', 2);
      await sendMasked('b', 2);
      assert.equal((await clients.a!.status()).round, 2);
      let cohort = await clients.a!.cohort(2);
      while (cohort.attempt === 1) {
        await new Promise((r) => setTimeout(r, 100));
        cohort = await clients.a!.cohort(2);
      }
      assert.deepEqual(
        cohort.sites.map((s) => s.site),
        ['a', 'b'],
      );
      await refused(clients.c!.cohort(2), 'NOT_IN_ROUND', 409);
      await sendMasked('a', 2);
      assert.deepEqual(await sendMasked('b', 2), { aggregated: true });
      expectMean(
        g1,
        decodeWeights(await clients.a!.weights(3), h.c.shared, 'g').values,
        ['a', 'b'].map((s) => ({ n: examples[s]!, d: deltas[s]! })),
        3 / 2 ** 24,
      );
    } finally {
      await h.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
