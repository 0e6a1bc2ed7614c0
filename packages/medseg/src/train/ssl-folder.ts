/**
 * The folder `medseg pretrain` writes: the pretrained network's weights
 * (pretrained.safetensors, the network of the plan with a reconstruction
 * head for masked image modelling; a contrastive projection head is not
 * kept), pretrained.json describing them, and the plan (plan.json) whose
 * network they fit. `medseg train --init <folder> --init-part encoder` reads
 * the weights through pretrainedWeightsFile.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedsegIoError } from '../io/errors.ts';
import type { NetworkConfig } from '../plan/types.ts';
import type { PretrainKind, PretrainMethod } from './ssl-pretrain.ts';

export const PRETRAINED_FILES = { weights: 'pretrained.safetensors', descriptor: 'pretrained.json', plan: 'plan.json' } as const;
export const PRETRAINED_FORMAT = 'medseg-pretrained';

export interface PretrainedDescriptor {
  format: typeof PRETRAINED_FORMAT;
  version: 1;
  method: PretrainMethod;
  kind: PretrainKind;
  architecture: string;
  dims: string;
  /** The network the weights were trained as (the plan's, numClasses = input channels for masked image modelling). */
  network: NetworkConfig;
  /** Relative name of the plan the network comes from. */
  plan: string;
  /** State-dict names of the encoder: what `--init-part encoder` copies. */
  encoderTensors: string[];
  images: number;
  steps: number;
  minutes: number;
  firstLoss: number;
  lastLoss: number;
  maskCell?: number[];
  maskRatio?: number;
  createdAt: string;
}

/** Whether `dir` is a folder that `medseg pretrain` wrote. */
export function isPretrainedFolder(dir: string): boolean {
  return existsSync(join(dir, PRETRAINED_FILES.descriptor));
}

export function readPretrainedDescriptor(dir: string): PretrainedDescriptor {
  const path = join(dir, PRETRAINED_FILES.descriptor);
  let d: PretrainedDescriptor;
  try {
    d = JSON.parse(readFileSync(path, 'utf8')) as PretrainedDescriptor;
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `not a readable pretraining descriptor (${(e as Error).message})`, path);
  }
  if (d?.format !== PRETRAINED_FORMAT) throw new MedsegIoError('BAD_DATA', `not a ${PRETRAINED_FORMAT} descriptor`, path);
  return d;
}

/** The weights file of a pretraining folder (checked to exist). */
export function pretrainedWeightsFile(dir: string): string {
  readPretrainedDescriptor(dir);
  const file = join(dir, PRETRAINED_FILES.weights);
  if (!existsSync(file)) throw new MedsegIoError('NOT_FOUND', 'the pretraining folder has no weights', file);
  return file;
}
