/**
 * `medseg federate serve`: the coordinator (coordinator.ts) behind its HTTP
 * API (coordinator-server.ts), until the last round is aggregated. It then
 * keeps answering for `lingerMs`, so that the sites learn that the
 * federation is finished and pull the final model.
 */
import { readFileSync } from 'node:fs';
import { loadPlan } from '../plan/store.ts';
import type { FederatedAlgorithm } from './aggregate.ts';
import { Coordinator } from './coordinator.ts';
import type { RoundRecord } from './coordinator-store.ts';
import { coordinatorServer } from './coordinator-server.ts';
import { FederationError } from './errors.ts';

export interface ServeOptions {
  out: string;
  /** The shared plan file. */
  plan: string;
  /** Site name -> key; or a JSON file {"<site>": "<key>", ...}. */
  sites: Map<string, string> | string;
  rounds: number;
  algorithm: FederatedAlgorithm;
  mu?: number;
  localEpochs?: number;
  quorum?: number;
  minUpdates?: number;
  roundTimeoutMs?: number;
  secureAggregation?: boolean;
  host?: string;
  port?: number;
  https?: { key: Buffer; cert: Buffer };
  lingerMs?: number;
  seed?: number;
  log?: (line: string) => void;
  /** Called with the URL once the coordinator listens. */
  onListening?: (url: string) => void;
}

export interface ServeResult {
  modelDir: string;
  rounds: RoundRecord[];
}

/** Site name -> key from a JSON file {"<site>": "<key>"}. */
export function readSiteKeys(path: string): Map<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FederationError('BAD_REQUEST', `cannot read the site keys ${path} (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new FederationError('BAD_REQUEST', `${path} must hold {"<site>": "<key>", ...}`);
  const out = new Map<string, string>();
  for (const [site, key] of Object.entries(raw)) {
    if (!/^[\w.-]{1,64}$/.test(site))
      throw new FederationError('BAD_REQUEST', `${path}: site name ${JSON.stringify(site)} must be 1-64 letters, digits, . _ -`);
    if (typeof key !== 'string' || key.length < 16)
      throw new FederationError('BAD_REQUEST', `${path}: the key of ${site} must be a string of at least 16 characters`);
    out.set(site, key);
  }
  return out;
}

export async function serveFederation(o: ServeOptions): Promise<ServeResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const coordinator = new Coordinator({
    dir: o.out,
    plan: loadPlan(o.plan),
    algorithm: o.algorithm,
    rounds: o.rounds,
    mu: o.algorithm === 'fedprox' ? (o.mu ?? 0.01) : 0,
    localEpochs: o.localEpochs ?? 1,
    sites: typeof o.sites === 'string' ? readSiteKeys(o.sites) : o.sites,
    quorum: o.quorum,
    minUpdates: o.minUpdates,
    roundTimeoutMs: o.roundTimeoutMs ?? 600_000,
    secureAggregation: o.secureAggregation ?? false,
    seed: o.seed,
    log,
  });
  const app = coordinatorServer(coordinator, { https: o.https });
  try {
    await coordinator.start();
    const address = await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 0 });
    log(
      `coordinator: listening on ${address} (${o.algorithm}, ${o.rounds} rounds, quorum ${coordinator.quorum}, at least ${coordinator.minUpdates} at the timeout)`,
    );
    o.onListening?.(address);
    await coordinator.whenFinished();
    await new Promise((r) => setTimeout(r, o.lingerMs ?? 5000));
    return { modelDir: o.out, rounds: [...coordinator.history] };
  } finally {
    await app.close();
    coordinator.close();
  }
}
