/**
 * The coordinator's folder, which is also the federation's model folder:
 *
 *   plan.json                      the shared plan (a medseg model folder's)
 *   federation.json                settings, completed rounds and their history
 *   rounds/global_<r>.safetensors  the global weights after round r (0: the initial ones)
 *   fold_0/model_final.safetensors the final global model, for `medseg predict`
 *
 * Each round's weights are written (temporary file + rename) before
 * federation.json records the round, so a coordinator killed at any moment
 * restarts from the last round both hold.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic-write.ts';
import type { FederatedAlgorithm } from './aggregate.ts';
import { decodeWeights, encodeWeights, type WeightShapes, type WeightValues } from './weights.ts';

export interface RoundRecord {
  round: number;
  /** The sites aggregated, their cases, and the DP epsilon each reported (null without DP). */
  sites: { site: string; examples: number; epsilon: number | null; delta: number | null }[];
  closedBy: 'quorum' | 'timeout';
  seconds: number;
  finishedAt: string;
}

export interface FederationRecord {
  schema: 'medseg.federation/1';
  algorithm: FederatedAlgorithm;
  mu: number;
  rounds: number;
  localEpochs: number;
  secureAggregation: boolean;
  completedRounds: number;
  history: RoundRecord[];
}

const RECORD = 'federation.json';

export function roundWeightsPath(dir: string, round: number): string {
  return join(dir, 'rounds', `global_${round}.safetensors`);
}

/** The folder's record, or null for a new federation. */
export function readFederationRecord(dir: string): FederationRecord | null {
  const path = join(dir, RECORD);
  if (!existsSync(path)) return null;
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as FederationRecord;
    if (r.schema !== 'medseg.federation/1' || !Number.isInteger(r.completedRounds)) throw new Error('not a medseg federation record');
    return r;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `cannot read the federation record (${(e as Error).message})`, path);
  }
}

/** Saves round `round`'s global weights, then the record that names it completed. */
export function saveRound(dir: string, record: FederationRecord, weights: WeightValues, shapes: WeightShapes): void {
  mkdirSync(join(dir, 'rounds'), { recursive: true });
  writeFileAtomicSync(roundWeightsPath(dir, record.completedRounds), encodeWeights(weights, shapes, { round: String(record.completedRounds) }));
  writeJsonAtomicSync(join(dir, RECORD), record);
}

export function loadRoundWeights(dir: string, round: number, shapes: WeightShapes): WeightValues {
  const path = roundWeightsPath(dir, round);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new MedsegIoError('NOT_FOUND', `the weights of round ${round} are missing (${(e as Error).message})`, path);
  }
  return decodeWeights(bytes, shapes, path).values;
}
