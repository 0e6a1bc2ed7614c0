/**
 * FedBN with two in-process sites on real hippocampus cases: the norm
 * layers' tensors are never in what the coordinator sends or receives, the
 * global model's norm tensors are never overwritten, and each site ends with
 * its own trained norms beside the shared global weights.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { parseWeights } from '../plan/model-weights.ts';
import { federationFixture, fixtureCoordinator, floatTensors } from '../testing/federation.ts';
import { joinFederation } from './site.ts';

function names(bytes: Uint8Array): string[] {
  const { tensors } = parseWeights(bytes, 'body');
  const out = [...tensors.keys()];
  torch.dispose(tensors);
  return out;
}

test('FedBN: norm tensors are never sent nor overwritten, and each site keeps its own', { timeout: 120_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-fedbn-'));
  try {
    const fx = await federationFixture(tmp, { sites: 2, cases: 4 });
    const out = join(tmp, 'coordinator');
    const { c, app } = await fixtureCoordinator(fx, out, { algorithm: 'fedbn', rounds: 2 });
    const received: Uint8Array[] = [];
    const sent: Uint8Array[] = [];
    app.addHook('preHandler', async (req) => {
      if (req.url.endsWith('/update')) received.push(req.body as Buffer);
    });
    app.addHook('onSend', async (req, _reply, payload) => {
      if (req.url.endsWith('/weights')) sent.push(payload as Buffer);
      return payload;
    });
    const local = c.info('site_0').localTensors;
    assert.ok(local.length >= 4 && local.every((n) => /norm/.test(n)), `local tensors ${local.join(', ')}`);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      await Promise.all(
        fx.sites.map((s) => joinFederation({ url, site: s.name, key: fx.keys[s.name]!, dataset: s.dir, work: join(tmp, `work-${s.name}`), log: () => {} })),
      );
      await c.whenFinished();
    } finally {
      await app.close();
      c.close();
    }
    assert.equal(received.length, 4, 'two sites, two rounds');
    assert.ok(sent.length >= 4);
    for (const body of [...received, ...sent]) {
      const n = names(body);
      assert.ok(n.length > 0 && n.every((x) => !local.includes(x)), `a body holds norm tensors: ${n.filter((x) => local.includes(x))}`);
    }
    const g0 = floatTensors(join(out, 'rounds', 'global_0.safetensors'));
    const g2 = floatTensors(join(out, 'rounds', 'global_2.safetensors'));
    const sites = fx.sites.map((s) => floatTensors(join(tmp, `work-${s.name}`, 'model', 'fold_0', 'model_final.safetensors')));
    for (const n of local) {
      assert.deepEqual(g2.get(n), g0.get(n), `the global ${n} is not overwritten`);
      assert.notDeepEqual(sites[0]!.get(n), g0.get(n), `site_0 trained its ${n}`);
      assert.notDeepEqual(sites[0]!.get(n), sites[1]!.get(n), `the sites' ${n} differ`);
    }
    for (const [n, g] of g2) {
      if (local.includes(n)) continue;
      assert.notDeepEqual(g, g0.get(n), `${n} is federated`);
      for (const s of sites) assert.deepEqual(s.get(n), g, `a site's final ${n} is the global one`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
