/**
 * A coordinator and two site processes (`medseg federate serve|join`) on
 * loopback over HTTPS, two rounds of FedAvg on real hippocampus cases split 2 + 3: each
 * round's global weights equal the case-weighted mean of the weights the
 * sites trained (read from the sites' own round outputs), and the final
 * model folder predicts an image like any trained model.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readVolume } from '../io/read.ts';
import { predictPath } from '../pipeline/predict-folder.ts';
import { federationFixture, floatTensors, freePort, spawnMedseg } from '../testing/federation.ts';
import { selfSigned } from '../testing/tls.ts';
import type { FederationRecord } from './coordinator-store.ts';

test(
  "two site processes, two rounds of FedAvg: the global model is the case-weighted mean of the sites' models, and it predicts",
  { timeout: 120_000 },
  async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'medseg-fedavg-'));
    try {
      const fx = await federationFixture(tmp, { sites: 2, cases: 5 });
      const out = join(tmp, 'coordinator');
      // Over HTTPS with a self-signed certificate the sites trust; they start with the coordinator and wait for it to listen.
      const tls = selfSigned(tmp, 'coordinator');
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const coord = spawnMedseg([
        'federate',
        'serve',
        '--out',
        out,
        '--plan',
        fx.planPath,
        '--sites',
        fx.keysPath,
        '--rounds',
        '2',
        '--linger',
        '1',
        '--port',
        String(port),
        '--tls-key',
        tls.key,
        '--tls-cert',
        tls.cert,
      ]);
      const sites = fx.sites.map((s) =>
        spawnMedseg(['federate', 'join', url, '--data', s.dir, '--site', s.name, '--key', fx.keys[s.name]!, '--work', join(tmp, `work-${s.name}`)], {
          NODE_EXTRA_CA_CERTS: tls.cert,
        }),
      );
      for (const p of [...sites, coord]) {
        const r = await p.exited;
        assert.equal(r.code, 0, p.stderr);
      }
      for (const r of [1, 2]) assert.match(coord.stderr, new RegExp(`round ${r}/2: aggregated 2 sites`));
      assert.match(sites[0]!.stderr, /round 2\/2: sent the update/);

      const cases = fx.sites.map((s) => s.ids.length);
      assert.deepEqual(cases, [2, 3]);
      const record = JSON.parse(readFileSync(join(out, 'federation.json'), 'utf8')) as FederationRecord;
      assert.equal(record.completedRounds, 2);
      assert.deepEqual(
        record.history.map((h) => h.sites.map((s) => `${s.site}:${s.examples}`).sort()),
        [
          ['site_0:2', 'site_1:3'],
          ['site_0:2', 'site_1:3'],
        ],
      );
      for (const r of [1, 2]) {
        const global = floatTensors(join(out, 'rounds', `global_${r}.safetensors`));
        const before = floatTensors(join(out, 'rounds', `global_${r - 1}.safetensors`));
        const local = fx.sites.map((s) => floatTensors(join(tmp, `work-${s.name}`, `round_${r}`, 'model_final.safetensors')));
        let worst = 0;
        let moved = 0;
        for (const [name, g] of global) {
          const [a, b] = [local[0]!.get(name)!, local[1]!.get(name)!];
          for (let i = 0; i < g.length; i++) {
            const mean = (cases[0]! * a[i]! + cases[1]! * b[i]!) / (cases[0]! + cases[1]!);
            worst = Math.max(worst, Math.abs(g[i]! - mean));
            moved = Math.max(moved, Math.abs(a[i]! - b[i]!), Math.abs(g[i]! - before.get(name)![i]!));
          }
        }
        assert.ok(moved > 1e-3, `round ${r}: the sites trained apart (largest difference ${moved})`);
        assert.ok(worst < 2e-6, `round ${r}: global vs the case-weighted mean of the sites, largest difference ${worst}`);
      }
      // The final global model is the last round's, in a model folder predict reads.
      assert.deepEqual(floatTensors(join(out, 'fold_0', 'model_final.safetensors')), floatTensors(join(out, 'rounds', 'global_2.safetensors')));
      const input = join(tmp, 'input');
      mkdirSync(input);
      symlinkSync(fx.sites[0]!.dir + '/imagesTr/' + `${fx.sites[0]!.ids[0]}_0000.nii.gz`, join(input, 'case.nii.gz'));
      const p = await predictPath({ model: out, input, out: join(tmp, 'pred'), progress: { start() {}, update() {}, stop() {} } });
      assert.equal(p.outputs.length, 1);
      const [img, seg] = [await readVolume(join(input, 'case.nii.gz')), await readVolume(p.outputs[0]!.output)];
      assert.deepEqual(seg.size, img.size);
      assert.ok(existsSync(join(tmp, 'work-site_0', 'model', 'fold_0', 'model_final.safetensors')), "the site's model folder");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
