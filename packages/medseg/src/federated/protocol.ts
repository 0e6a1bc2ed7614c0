/**
 * The federation's HTTP protocol, shared by the coordinator and the sites.
 * Every request names its site (header x-medseg-site) and carries the site's
 * key (Authorization: Bearer <key>).
 *
 *   GET  /federation                    FederationInfo: the plan, the algorithm, the round
 *   GET  /status                        RoundStatus
 *   GET  /rounds/<r>/weights            the round's global weights (safetensors; FedBN: no norm tensors)
 *   POST /rounds/<r>/update             a site's update: safetensors of (local - global) per shared
 *                                       tensor, metadata UPDATE_METADATA (cases, DP epsilon)
 *   POST /rounds/<r>/keys               secure aggregation: the site's public key and cases
 *   GET  /rounds/<r>/cohort             secure aggregation: the sites whose updates the round sums
 *   POST /rounds/<r>/masked             secure aggregation: the masked update (little-endian uint32 words)
 *
 * A refused request gets a 4xx and {statusCode, code, message} with code one
 * of FEDERATION_ERRORS (errors.ts).
 */
import type { Plan } from '../plan/types.ts';
import type { FederatedAlgorithm } from './aggregate.ts';

export const SITE_HEADER = 'x-medseg-site';

/** What a site learns when it joins. */
export interface FederationInfo {
  site: string;
  algorithm: FederatedAlgorithm;
  /** FedProx's proximal weight (0 for the others). */
  mu: number;
  rounds: number;
  /** Local epochs per round (each of the plan's iterationsPerEpoch). */
  localEpochs: number;
  /** The shared plan: every site builds the same network from it. */
  plan: Plan;
  /** Tensors that stay at each site (FedBN's norm layers): never sent, never overwritten. */
  localTensors: string[];
  secureAggregation: boolean;
}

export interface RoundStatus {
  /** The open round (1-based); rounds + 1 once finished. */
  round: number;
  rounds: number;
  finished: boolean;
  /** Whether this site's update for the open round has arrived. */
  submitted: boolean;
  /** Updates received for the open round. */
  updates: number;
}

/** Safetensors metadata keys of an update. */
export const UPDATE_METADATA = {
  examples: 'medseg.examples',
  epsilon: 'medseg.dp.epsilon',
  delta: 'medseg.dp.delta',
} as const;

/** Secure aggregation: the sites whose masked updates a round sums, fixed once enough sites sent keys. */
export interface Cohort {
  round: number;
  /** Rises when sites drop out after the cohort was fixed and it is fixed again among those left. */
  attempt: number;
  sites: { site: string; publicKey: string; examples: number }[];
}

/** The round number the masks of an attempt are drawn for (a new attempt, new masks). */
export function maskRound(round: number, attempt: number): number {
  return round * 1000 + attempt;
}
