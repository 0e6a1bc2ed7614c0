/**
 * A site's part in a federation (`medseg federate join`): join with the
 * site's key, then round after round pull the open round's global weights,
 * train locally on the site's own dataset, and send the update, until the
 * coordinator says the federation is finished. The site asks the coordinator
 * what to do next rather than remembering it, so a site that dropped out, a
 * restarted site and a site whose update arrived too late all continue with
 * the open round; a coordinator that is down (restarting) is waited for.
 * At the end the site writes its own model folder: the final global model,
 * with the site's norm tensors under FedBN.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { foldDir, foldFile, modelFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { savePlan } from '../plan/store.ts';
import { FederationError } from './errors.ts';
import { maskRound, UPDATE_METADATA, type FederationInfo } from './protocol.ts';
import { maskVector, newMaskingKeys } from './secure-aggregation.ts';
import { CoordinatorClient } from './site-client.ts';
import { SiteTrainer, type LocalRound, type SiteDp } from './site-training.ts';
import { decodeWeights, encodeWeights, flattenWeights, writeNetWeights } from './weights.ts';

export interface JoinOptions {
  url: string;
  site: string;
  key: string;
  /** The site's nnU-Net raw dataset folder. */
  dataset: string;
  /** The site's working folder: round outputs, its state, and its final model folder (model/). */
  work: string;
  dp?: SiteDp;
  /** How long the coordinator may be unreachable before the site gives up (default 10 min). */
  patienceMs?: number;
  /** Pause between status polls (default 200 ms). */
  pollMs?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface JoinResult {
  rounds: { round: number; steps: number; seconds: number; epsilon: number | null }[];
  modelDir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function joinFederation(o: JoinOptions): Promise<JoinResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const client = new CoordinatorClient(o.url, o.site, o.key);
  const poll = o.pollMs ?? 200;
  const patience = o.patienceMs ?? 600_000;
  let downSince: number | null = null;
  /** Runs a request, waiting out an unreachable coordinator for up to `patience`. */
  async function patiently<T>(f: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const r = await f();
        downSince = null;
        return r;
      } catch (e) {
        if (!(e instanceof FederationError && e.code === 'UNREACHABLE')) throw e;
        downSince ??= Date.now();
        if (Date.now() - downSince > patience) throw e;
        await sleep(Math.max(poll, 500));
      }
    }
  }

  mkdirSync(o.work, { recursive: true });
  const info: FederationInfo = await patiently(() => client.info());
  if (o.dp && info.secureAggregation) log(`site ${o.site}: DP-SGD and secure aggregation together`);
  const trainer = new SiteTrainer(info.plan, o.dataset, o.work, info.localTensors, o.seed);
  const done: JoinResult['rounds'] = [];
  try {
    log(
      `site ${o.site}: joined a ${info.algorithm} federation of ${info.rounds} rounds (${trainer.examples} cases; ${info.localTensors.length} tensors stay local)`,
    );
    await trainer.prepare();
    for (;;) {
      const st = await patiently(() => client.status());
      if (st.finished) break;
      if (st.submitted) {
        await sleep(poll);
        continue;
      }
      const round = st.round;
      try {
        const global = decodeWeights(await patiently(() => client.weights(round)), trainer.shared, `round ${round}'s global weights`).values;
        log(`site ${o.site}: round ${round}/${info.rounds}: training ${info.localEpochs} local epoch(s)`);
        const r = await trainer.trainRound(round, global, { localEpochs: info.localEpochs, mu: info.mu, dp: o.dp });
        if (info.secureAggregation) await sendMasked(client, round, r, poll, patiently);
        else {
          const meta: Record<string, string> = { [UPDATE_METADATA.examples]: String(r.examples) };
          if (r.privacy) Object.assign(meta, { [UPDATE_METADATA.epsilon]: String(r.privacy.epsilon), [UPDATE_METADATA.delta]: String(r.privacy.delta) });
          await patiently(() => client.submit(round, encodeWeights(r.delta, trainer.shared, meta)));
        }
        done.push({ round, steps: r.steps, seconds: r.seconds, epsilon: r.privacy?.epsilon ?? null });
        log(
          `site ${o.site}: round ${round}/${info.rounds}: sent the update (${r.steps} steps, ${r.seconds.toFixed(1)} s${r.privacy ? `, DP epsilon ${r.privacy.epsilon.toFixed(3)} at delta ${r.privacy.delta}` : ''})`,
        );
      } catch (e) {
        if (!(e instanceof FederationError && (e.code === 'ROUND_CLOSED' || e.code === 'NOT_IN_ROUND' || e.code === 'FINISHED'))) throw e;
        log(`site ${o.site}: round ${round}: ${e.message}; continuing with the open round`);
      }
    }
    const final = decodeWeights(await patiently(() => client.weights(info.rounds + 1)), trainer.shared, 'the final global weights').values;
    writeNetWeights(trainer.net, final);
    const modelDir = join(o.work, 'model');
    mkdirSync(foldDir(modelDir, 0), { recursive: true });
    await savePlan(modelFile(modelDir, 'plan'), info.plan);
    saveWeights(foldFile(foldDir(modelDir, 0), 'final'), trainer.net.stateDict(), { federation: `${info.algorithm}, site ${o.site}` });
    log(`site ${o.site}: federation finished; the site's model folder is ${modelDir}`);
    return { rounds: done, modelDir };
  } finally {
    await trainer.close();
  }
}

/** Secure aggregation: key, wait for the cohort, send the delta scaled by the site's share of the cohort's cases and masked; again if the cohort is fixed anew. */
async function sendMasked(
  client: CoordinatorClient,
  round: number,
  r: LocalRound,
  poll: number,
  patiently: <T>(f: () => Promise<T>) => Promise<T>,
): Promise<void> {
  const keys = newMaskingKeys();
  await patiently(() => client.submitKey(round, keys.publicKey.toString('base64'), r.examples, r.privacy));
  const flat = flattenWeights(r.delta, new Map([...r.delta].map(([n, v]) => [n, [v.length]])));
  let sentAttempt = 0;
  for (;;) {
    if ((await patiently(() => client.status())).round !== round) return;
    let cohort;
    try {
      cohort = await patiently(() => client.cohort(round));
    } catch (e) {
      if (e instanceof FederationError && e.code === 'NOT_IN_ROUND' && /not fixed yet/.test(e.message)) {
        // The cohort is fixed at the quorum or the timeout.
        await sleep(poll);
        continue;
      }
      if (e instanceof FederationError && e.code === 'ROUND_CLOSED') return;
      throw e;
    }
    if (cohort.attempt === sentAttempt) {
      await sleep(poll);
      continue;
    }
    const total = cohort.sites.reduce((s, x) => s + x.examples, 0);
    const share = r.examples / total;
    const peers = cohort.sites.filter((s) => s.site !== client.site).map((s) => ({ id: s.site, publicKey: Buffer.from(s.publicKey, 'base64') }));
    const masked = maskVector(
      flat.map((v) => v * share),
      { id: client.site, keys },
      peers,
      maskRound(round, cohort.attempt),
    );
    try {
      const res = await patiently(() => client.submitMasked(round, cohort.attempt, masked));
      sentAttempt = cohort.attempt;
      if (res.aggregated) return;
    } catch (e) {
      if (!(e instanceof FederationError && e.code === 'NOT_IN_ROUND')) throw e;
    }
  }
}
