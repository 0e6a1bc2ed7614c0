/**
 * The coordinator's rounds, apart from HTTP (coordinator-server.ts serves
 * them). A round is open from its start until it is aggregated: when the
 * quorum of updates is in, or when the round timeout has passed and at least
 * the minimum number of updates is in. Any registered site may send one
 * update per round; an update for a round already aggregated is refused
 * (ROUND_CLOSED) and the site pulls the open round, so a site that dropped
 * out and rejoins never holds the federation up.
 *
 * Sites send deltas (local - global) and their case counts; the new global
 * model is global + the case-weighted mean of the deltas (aggregate.ts), over
 * the shared tensors: FedBN's norm tensors are neither sent nor received.
 * With secure aggregation the sites first send round keys, the coordinator
 * fixes the round's cohort, each cohort site sends its delta scaled by its
 * share of the cohort's cases and masked (secure-aggregation.ts), and the
 * coordinator only ever sees the sum. A cohort site that drops out leaves
 * its masks in the sum; at the timeout the cohort is fixed again among the
 * sites that sent, with fresh masks (a new attempt).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import * as torch from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { foldDir, foldFile, modelFile } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { savePlan } from '../plan/store.ts';
import type { Plan } from '../plan/types.ts';
import { aggregate, normalisationTensorNames, type FederatedAlgorithm } from './aggregate.ts';
import { loadRoundWeights, readFederationRecord, saveRound, type FederationRecord, type RoundRecord } from './coordinator-store.ts';
import { FederationError } from './errors.ts';
import { maskRound, UPDATE_METADATA, type Cohort, type FederationInfo, type RoundStatus } from './protocol.ts';
import { unmaskSum } from './secure-aggregation.ts';
import {
  decodeWeights,
  encodeWeights,
  readNetWeights,
  sharedShapes,
  unflattenWeights,
  valueCount,
  writeNetWeights,
  type WeightShapes,
  type WeightValues,
} from './weights.ts';

export interface CoordinatorOptions {
  /** The coordinator's folder (coordinator-store.ts); a folder with a record resumes. */
  dir: string;
  plan: Plan;
  algorithm: FederatedAlgorithm;
  rounds: number;
  /** FedProx's proximal weight. */
  mu: number;
  localEpochs: number;
  /** Site name -> key. */
  sites: Map<string, string>;
  /** Updates that close a round at once (default: every site). */
  quorum?: number;
  /** Updates a round needs to close at its timeout (default 1; 2 with secure aggregation). */
  minUpdates?: number;
  roundTimeoutMs: number;
  secureAggregation: boolean;
  /** Seed of the initial global weights. */
  seed?: number;
  log?: (line: string) => void;
}

interface SitePrivacy {
  epsilon: number;
  delta: number;
}

interface Update {
  site: string;
  examples: number;
  delta: WeightValues;
  epsilon: number | null;
  delta_: number | null;
}

const sha = (s: string) => createHash('sha256').update(s).digest();

function metaNumber(meta: Record<string, string>, key: string, required: boolean): number | null {
  const raw = meta[key];
  if (raw === undefined) {
    if (required) throw new FederationError('BAD_REQUEST', `the update's metadata lacks ${key}`);
    return null;
  }
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new FederationError('BAD_REQUEST', `the update's ${key} is not a number: ${JSON.stringify(raw)}`);
  return v;
}

export class Coordinator {
  readonly quorum: number;
  readonly minUpdates: number;
  private readonly keys: Map<string, Buffer>;
  private readonly net: ReturnType<typeof createNetwork>;
  /** Every float32 state tensor of the network; FedBN's local ones stay at their initial values. */
  private readonly allShapes: WeightShapes;
  /** The tensors sites send and receive. */
  readonly shared: WeightShapes;
  private readonly local: Set<string>;
  private global: WeightValues;
  private record: FederationRecord;
  private updates = new Map<string, Update>();
  private roundStart = Date.now();
  private timedOut = false;
  private timer: NodeJS.Timeout | null = null;
  private weightsCache: { round: number; bytes: Buffer } | null = null;
  private secure = {
    keys: new Map<string, { publicKey: string; examples: number; privacy: SitePrivacy | null }>(),
    cohort: null as Cohort | null,
    masked: new Map<string, Uint32Array>(),
  };
  private readonly log: (line: string) => void;
  private finishedListeners: (() => void)[] = [];

  constructor(private readonly o: CoordinatorOptions) {
    if (o.sites.size === 0) throw new FederationError('BAD_REQUEST', 'a federation needs at least one site');
    if (!(Number.isInteger(o.rounds) && o.rounds >= 1)) throw new FederationError('BAD_REQUEST', `rounds must be a whole number >= 1, not ${o.rounds}`);
    this.quorum = o.quorum ?? o.sites.size;
    this.minUpdates = o.minUpdates ?? (o.secureAggregation ? 2 : 1);
    if (!(this.quorum >= 1 && this.quorum <= o.sites.size))
      throw new FederationError('BAD_REQUEST', `the quorum must lie in 1..${o.sites.size}, not ${this.quorum}`);
    if (!(this.minUpdates >= 1 && this.minUpdates <= this.quorum))
      throw new FederationError('BAD_REQUEST', `the minimum number of updates must lie in 1..quorum (${this.quorum}), not ${this.minUpdates}`);
    if (o.secureAggregation && this.minUpdates < 2)
      throw new FederationError('BAD_REQUEST', 'secure aggregation needs at least 2 updates a round (one masked update alone is the update)');
    this.log = o.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.keys = new Map([...o.sites].map(([s, k]) => [s, sha(k)]));
    torch.manualSeed(o.seed ?? 12345);
    this.net = createNetwork(o.plan.network);
    this.allShapes = sharedShapes(this.net);
    this.local = o.algorithm === 'fedbn' ? normalisationTensorNames(this.net) : new Set();
    this.shared = sharedShapes(this.net, this.local);
    const stored = readFederationRecord(o.dir);
    if (stored) {
      if (stored.algorithm !== o.algorithm)
        throw new FederationError('BAD_REQUEST', `${o.dir} holds a ${stored.algorithm} federation; start it again with --algorithm ${stored.algorithm}`);
      this.record = { ...stored, rounds: o.rounds, mu: o.mu, localEpochs: o.localEpochs, secureAggregation: o.secureAggregation };
      this.global = loadRoundWeights(o.dir, stored.completedRounds, this.allShapes);
      this.log(`federation: resuming after round ${stored.completedRounds} of ${o.rounds} from ${o.dir}`);
    } else {
      this.record = {
        schema: 'medseg.federation/1',
        algorithm: o.algorithm,
        mu: o.mu,
        rounds: o.rounds,
        localEpochs: o.localEpochs,
        secureAggregation: o.secureAggregation,
        completedRounds: 0,
        history: [],
      };
      this.global = readNetWeights(this.net, this.allShapes.keys());
      mkdirSync(o.dir, { recursive: true });
      saveRound(o.dir, this.record, this.global, this.allShapes);
    }
  }

  /** Writes the plan, and the final model if the federation is already done; starts the round timer. */
  async start(): Promise<void> {
    await savePlan(modelFile(this.o.dir, 'plan'), this.o.plan);
    if (this.finished) this.writeFinalModel();
    else this.openRound();
  }

  get round(): number {
    return this.record.completedRounds + 1;
  }

  get finished(): boolean {
    return this.record.completedRounds >= this.record.rounds;
  }

  get history(): readonly RoundRecord[] {
    return this.record.history;
  }

  /** The current global values of the shared tensors. */
  globalValues(): WeightValues {
    return new Map([...this.shared.keys()].map((n) => [n, this.global.get(n)!]));
  }

  /** Resolves once the last round is aggregated. */
  whenFinished(): Promise<void> {
    return this.finished ? Promise.resolve() : new Promise((resolve) => this.finishedListeners.push(resolve));
  }

  /** Checks a site's key (constant time); throws UNAUTHORIZED. */
  authenticate(site: string | undefined, key: string | undefined): string {
    const want = site ? this.keys.get(site) : undefined;
    if (!site || !key || !want || !timingSafeEqual(sha(key), want))
      throw new FederationError('UNAUTHORIZED', 'unknown site or wrong key: send the site name in x-medseg-site and its key as "Authorization: Bearer <key>"');
    return site;
  }

  info(site: string): FederationInfo {
    return {
      site,
      algorithm: this.record.algorithm,
      mu: this.record.mu,
      rounds: this.record.rounds,
      localEpochs: this.record.localEpochs,
      plan: this.o.plan,
      localTensors: [...this.local].sort(),
      secureAggregation: this.record.secureAggregation,
    };
  }

  status(site: string): RoundStatus {
    return {
      round: this.round,
      rounds: this.record.rounds,
      finished: this.finished,
      submitted: this.updates.has(site) || this.secure.masked.has(site),
      updates: this.record.secureAggregation ? this.secure.masked.size : this.updates.size,
    };
  }

  private checkRound(round: number, what: string): void {
    if (!Number.isInteger(round)) throw new FederationError('BAD_REQUEST', `round must be a whole number, not ${round}`);
    if (this.finished && round > this.record.rounds) throw new FederationError('FINISHED', `the federation finished after ${this.record.rounds} rounds`);
    if (round < this.round)
      throw new FederationError('ROUND_CLOSED', `${what} for round ${round}, which is closed: round ${this.round} is open; pull its weights`);
    if (round > this.round) throw new FederationError('ROUND_NOT_OPEN', `${what} for round ${round}, which has not started: round ${this.round} is open`);
  }

  /** The global weights a round starts from (the shared tensors), as safetensors; the final model's once finished. */
  weightsBytes(round: number): Buffer {
    if (!(this.finished && round === this.record.rounds + 1)) this.checkRound(round, 'weights');
    if (this.weightsCache?.round !== round) this.weightsCache = { round, bytes: encodeWeights(this.globalValues(), this.shared, { round: String(round) }) };
    return this.weightsCache.bytes;
  }

  /** A site's update for a round: safetensors of its deltas with UPDATE_METADATA. */
  submit(site: string, round: number, body: Uint8Array): { aggregated: boolean } {
    if (this.record.secureAggregation) throw new FederationError('BAD_REQUEST', 'this federation uses secure aggregation: send keys and a masked update');
    this.checkRound(round, `site ${site} sent an update`);
    if (this.updates.has(site)) throw new FederationError('DUPLICATE_UPDATE', `site ${site} already sent its update for round ${round}`);
    const { values, metadata } = decodeWeights(body, this.shared, `site ${site}'s update for round ${round}`);
    const examples = metaNumber(metadata, UPDATE_METADATA.examples, true)!;
    if (!(Number.isInteger(examples) && examples > 0))
      throw new FederationError('BAD_REQUEST', `the number of cases must be a whole number > 0, not ${examples}`);
    const epsilon = metaNumber(metadata, UPDATE_METADATA.epsilon, false);
    this.updates.set(site, { site, examples, delta: values, epsilon, delta_: metaNumber(metadata, UPDATE_METADATA.delta, false) });
    this.log(
      `round ${round}/${this.record.rounds}: update from ${site} (${examples} cases${epsilon !== null ? `, DP epsilon ${epsilon.toFixed(3)}` : ''}), ${this.updates.size} of quorum ${this.quorum}`,
    );
    return { aggregated: this.maybeAggregate() };
  }

  /** Secure aggregation: a site's round key and cases. */
  submitKey(site: string, round: number, publicKey: string, examples: number, privacy: SitePrivacy | null = null): void {
    if (!this.record.secureAggregation) throw new FederationError('BAD_REQUEST', 'this federation does not use secure aggregation');
    this.checkRound(round, `site ${site} sent a key`);
    if (!(Number.isInteger(examples) && examples > 0))
      throw new FederationError('BAD_REQUEST', `the number of cases must be a whole number > 0, not ${examples}`);
    if (typeof publicKey !== 'string' || !/^[A-Za-z0-9+/=]{40,200}$/.test(publicKey))
      throw new FederationError('BAD_REQUEST', 'publicKey must be a base64 X25519 key');
    const cohort = this.secure.cohort;
    if (cohort && !cohort.sites.some((s) => s.site === site))
      throw new FederationError('NOT_IN_ROUND', `round ${round}'s sites are fixed without ${site}: wait for round ${round + 1}`);
    if (privacy && !(Number.isFinite(privacy.epsilon) && privacy.epsilon >= 0 && privacy.delta > 0 && privacy.delta < 1))
      throw new FederationError('BAD_REQUEST', 'epsilon must be a number >= 0 and delta one in (0, 1)');
    if (cohort) return;
    this.secure.keys.set(site, { publicKey, examples, privacy });
    this.log(`round ${round}/${this.record.rounds}: key from ${site}, ${this.secure.keys.size} of quorum ${this.quorum}`);
    if (this.secure.keys.size >= this.quorum || (this.timedOut && this.secure.keys.size >= this.minUpdates)) this.fixCohort([...this.secure.keys.keys()]);
  }

  cohort(site: string, round: number): Cohort {
    this.checkRound(round, 'cohort');
    const c = this.secure.cohort;
    if (!c) throw new FederationError('NOT_IN_ROUND', `round ${round}'s sites are not fixed yet (${this.secure.keys.size} keys of quorum ${this.quorum})`);
    if (!c.sites.some((s) => s.site === site)) throw new FederationError('NOT_IN_ROUND', `round ${round}'s sites are fixed without ${site}`);
    return c;
  }

  /** Secure aggregation: a cohort site's masked update for an attempt. */
  submitMasked(site: string, round: number, attempt: number, body: Uint8Array): { aggregated: boolean } {
    const c = this.cohort(site, round);
    if (attempt !== c.attempt) throw new FederationError('NOT_IN_ROUND', `attempt ${attempt} is over: round ${round} is at attempt ${c.attempt}; mask again`);
    if (this.secure.masked.has(site)) throw new FederationError('DUPLICATE_UPDATE', `site ${site} already sent its masked update for round ${round}`);
    const n = valueCount(this.shared);
    if (body.byteLength !== n * 4) throw new FederationError('WRONG_TENSORS', `a masked update has ${n * 4} bytes for this model, not ${body.byteLength}`);
    const words = new Uint32Array(n);
    Buffer.from(words.buffer).set(body);
    this.secure.masked.set(site, words);
    this.log(`round ${round}/${this.record.rounds}: masked update from ${site}, ${this.secure.masked.size} of ${c.sites.length}`);
    return { aggregated: this.maybeAggregate() };
  }

  private fixCohort(sites: string[]): void {
    const attempt = (this.secure.cohort?.attempt ?? 0) + 1;
    this.secure.cohort = {
      round: this.round,
      attempt,
      sites: sites.sort().map((s) => {
        const k = this.secure.keys.get(s)!;
        return { site: s, publicKey: k.publicKey, examples: k.examples };
      }),
    };
    this.secure.masked.clear();
    this.log(
      `round ${this.round}/${this.record.rounds}: secure aggregation among ${sites.join(', ')} (attempt ${attempt}, masks of round ${maskRound(this.round, attempt)})`,
    );
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timedOut = false;
    this.timer = setTimeout(() => this.onTimeout(), this.o.roundTimeoutMs);
    this.timer.unref();
  }

  private openRound(): void {
    this.updates.clear();
    this.secure = { keys: new Map(), cohort: null, masked: new Map() };
    this.roundStart = Date.now();
    this.weightsCache = null;
    this.log(`round ${this.round}/${this.record.rounds}: open`);
    this.armTimer();
  }

  private onTimeout(): void {
    this.timedOut = true;
    const round = this.round;
    if (this.record.secureAggregation) {
      const c = this.secure.cohort;
      if (!c) {
        if (this.secure.keys.size >= this.minUpdates) this.fixCohort([...this.secure.keys.keys()]);
        else this.log(`round ${round}: timeout with ${this.secure.keys.size} keys, waiting for ${this.minUpdates}`);
      } else if (this.secure.masked.size >= this.minUpdates) {
        const left = c.sites.filter((s) => !this.secure.masked.has(s.site)).map((s) => s.site);
        this.log(`round ${round}: ${left.join(', ')} sent no masked update before the timeout; the cohort is fixed again without them`);
        for (const s of left) this.secure.keys.delete(s);
        this.fixCohort([...this.secure.masked.keys()]);
      } else this.log(`round ${round}: timeout with ${this.secure.masked.size} masked updates, waiting for ${this.minUpdates}`);
      return;
    }
    if (!this.maybeAggregate()) this.log(`round ${round}: timeout with ${this.updates.size} updates, waiting for ${this.minUpdates}`);
  }

  private maybeAggregate(): boolean {
    if (this.record.secureAggregation) {
      const c = this.secure.cohort;
      if (!c || this.secure.masked.size < c.sites.length) return false;
      const sum = unmaskSum(c.sites.map((s) => this.secure.masked.get(s.site)!));
      this.applyMeanDelta(
        unflattenWeights(sum, this.shared),
        c.sites.map((s) => {
          const p = this.secure.keys.get(s.site)?.privacy;
          return { site: s.site, examples: s.examples, epsilon: p?.epsilon ?? null, delta: p?.delta ?? null };
        }),
        this.timedOut ? 'timeout' : 'quorum',
      );
      return true;
    }
    const n = this.updates.size;
    if (n < this.quorum && !(this.timedOut && n >= this.minUpdates)) return false;
    const ups = [...this.updates.values()];
    const zeros = new Map([...this.shared].map(([name, s]) => [name, new Float32Array(s.reduce((a, b) => a * b, 1))]));
    const mean = aggregate(
      zeros,
      ups.map((u) => ({ site: u.site, examples: u.examples, weights: u.delta })),
    );
    this.applyMeanDelta(
      mean,
      ups.map((u) => ({ site: u.site, examples: u.examples, epsilon: u.epsilon, delta: u.delta_ })),
      n >= this.quorum ? 'quorum' : 'timeout',
    );
    return true;
  }

  private applyMeanDelta(mean: WeightValues, sites: RoundRecord['sites'], closedBy: RoundRecord['closedBy']): void {
    const next: WeightValues = new Map(this.global);
    for (const [name, d] of mean) {
      const g = this.global.get(name)!;
      next.set(
        name,
        Float32Array.from(g, (v, i) => v + d[i]!),
      );
    }
    const round = this.round;
    const seconds = (Date.now() - this.roundStart) / 1000;
    const record: FederationRecord = {
      ...this.record,
      completedRounds: round,
      history: [...this.record.history, { round, sites, closedBy, seconds, finishedAt: new Date().toISOString() }],
    };
    saveRound(this.o.dir, record, next, this.allShapes);
    this.global = next;
    this.record = record;
    this.log(
      `round ${round}/${record.rounds}: aggregated ${sites.length} sites (${sites.map((s) => s.site).join(', ')}) by ${closedBy} in ${seconds.toFixed(1)} s`,
    );
    if (this.finished) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.weightsCache = null;
      this.writeFinalModel();
      for (const f of this.finishedListeners.splice(0)) f();
    } else this.openRound();
  }

  /** fold_0/model_final.safetensors: the whole network at the global values, for `medseg predict`. */
  private writeFinalModel(): void {
    writeNetWeights(this.net, this.global);
    const dir = foldDir(this.o.dir, 0);
    mkdirSync(dir, { recursive: true });
    saveWeights(foldFile(dir, 'final'), this.net.stateDict(), { federation: `${this.record.algorithm}, ${this.record.completedRounds} rounds` });
    this.log(`federation finished after ${this.record.completedRounds} rounds: model folder ${this.o.dir}`);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.net.dispose();
  }
}
