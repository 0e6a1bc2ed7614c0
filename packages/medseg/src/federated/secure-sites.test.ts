/**
 * Two in-process sites with DP-SGD and secure aggregation on real
 * hippocampus cases: the coordinator only receives masked words, yet each
 * round's global model is the case-weighted mean of the sites' trained
 * models to the fixed-point resolution; each site's epsilon, recorded per
 * round, is the RDP accountant's for its sampling rate and steps so far.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { federationFixture, fixtureCoordinator, floatTensors } from '../testing/federation.ts';
import { epsilonFromRdp, sampledGaussianRdp } from '../train/privacy-accountant.ts';
import { FIXED_POINT_SCALE } from './secure-aggregation.ts';
import { joinFederation } from './site.ts';

test(
  "DP-SGD sites under secure aggregation: the global model is the case-weighted mean, and each site reports the accountant's epsilon",
  { timeout: 120_000 },
  async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'medseg-secure-'));
    try {
      const fx = await federationFixture(tmp, { sites: 2, cases: 5 });
      const out = join(tmp, 'coordinator');
      const { c, app } = await fixtureCoordinator(fx, out, { algorithm: 'fedavg', rounds: 2, secureAggregation: true });
      const bodies: number[] = [];
      app.addHook('preHandler', async (req) => {
        if (req.url.includes('/update')) throw new Error('a plain update reached the coordinator');
        if (req.url.includes('/masked')) bodies.push((req.body as Buffer).length);
      });
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const dp = { noiseMultiplier: 1.1, clipNorm: 1, delta: 1e-5 };
      let results;
      try {
        results = await Promise.all(
          fx.sites.map((s) =>
            joinFederation({ url, site: s.name, key: fx.keys[s.name]!, dataset: s.dir, work: join(tmp, `work-${s.name}`), dp, log: () => {} }),
          ),
        );
        await c.whenFinished();
      } finally {
        await app.close();
        c.close();
      }
      assert.equal(bodies.length, 4);
      const cases = fx.sites.map((s) => s.ids.length);
      for (const r of [1, 2]) {
        const g = floatTensors(join(out, 'rounds', `global_${r}.safetensors`));
        const local = fx.sites.map((s) => floatTensors(join(tmp, `work-${s.name}`, `round_${r}`, 'model_final.safetensors')));
        let worst = 0;
        for (const [n, v] of g)
          for (let i = 0; i < v.length; i++) {
            const mean = (cases[0]! * local[0]!.get(n)![i]! + cases[1]! * local[1]!.get(n)![i]!) / (cases[0]! + cases[1]!);
            worst = Math.max(worst, Math.abs(v[i]! - mean));
          }
        assert.ok(worst < 4 / FIXED_POINT_SCALE, `round ${r}: largest difference from the case-weighted mean ${worst}`);
      }
      const history = c.history;
      fx.sites.forEach((s, k) => {
        const q = fx.plan.batchSize / s.ids.length;
        let steps = 0;
        for (const [i, round] of results[k]!.rounds.entries()) {
          steps += round.steps;
          const want = epsilonFromRdp(sampledGaussianRdp(q, dp.noiseMultiplier, steps), dp.delta).epsilon;
          assert.ok(Math.abs(round.epsilon! - want) < 1e-9 && want > 0, `${s.name} round ${i + 1}: epsilon ${round.epsilon} vs ${want}`);
          const recorded = history[i]!.sites.find((x) => x.site === s.name)!;
          assert.equal(recorded.epsilon, round.epsilon);
        }
        assert.ok(results[k]!.rounds[1]!.epsilon! > results[k]!.rounds[0]!.epsilon!, 'privacy spent grows over rounds');
      });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
