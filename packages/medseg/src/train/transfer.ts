/**
 * Transfer learning: a network starts from weights trained elsewhere, another
 * medseg model or a safetensors file (for nnU-Net checkpoints converted with
 * scripts/pth-to-safetensors.py, through the 'nnunet' or 'monai' name mapping), the
 * whole network or only its encoder. Tensors are matched by (mapped) name and
 * shape; what does not fit (a head for another number of classes, a first
 * convolution for other channels) is left as initialised and reported, so
 * the report says exactly what was transferred.
 */
import { existsSync, statSync } from 'node:fs';
import * as torch from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { ClassificationNetwork } from '../models/classifier-config.ts';
import { encoderStateNames } from '../models/encoder-parts.ts';
import { foldDir, listFolds, weightsFile } from '../plan/model-folder.ts';
import { readWeights } from '../plan/model-weights.ts';
import { isPretrainedFolder, pretrainedWeightsFile } from './ssl-folder.ts';
import { WEIGHT_MAPPINGS, type WeightMappingName } from './weight-mappings.ts';

export interface InitOptions {
  /** A medseg model folder (its lowest trained fold's best weights, else final), a `medseg pretrain` folder or a .safetensors file. */
  source: string;
  /** Whose names the file uses (default 'medseg'). */
  from?: WeightMappingName;
  /** Copy every fitting tensor, or only the encoder's (default 'all'). */
  part?: 'all' | 'encoder';
}

export interface InitReport {
  /** The weights file read. */
  file: string;
  from: WeightMappingName;
  part: 'all' | 'encoder';
  /** medseg names that were copied. */
  loaded: string[];
  /** Source tensors not copied, with the reason. */
  skipped: { name: string; reason: string }[];
  /** medseg tensors that kept their initial values. */
  untouched: string[];
}

/** The weights file behind a source: a .safetensors file, a pretraining folder's weights, or a model folder's first trained fold. */
export function initWeightsFile(source: string): string {
  if (!existsSync(source)) throw new MedsegIoError('NOT_FOUND', 'no such model folder or weights file to initialise from', source);
  if (!statSync(source).isDirectory()) return source;
  if (isPretrainedFolder(source)) return pretrainedWeightsFile(source);
  for (const { dir } of listFolds(source)) {
    const file = weightsFile(dir);
    if (file) return file;
  }
  throw new MedsegIoError('NOT_FOUND', `no trained fold to initialise from (looked for ${foldDir(source, 0)} and other folds)`, source);
}

const isClassifier = (net: SegmentationNetwork | ClassificationNetwork): net is ClassificationNetwork => 'inputSize' in net.config;

/**
 * Copies the fitting tensors of `o.source` into `net` (in place) and says what
 * it did. A classifier takes a segmentation model's encoder by name (the
 * HybridNet classifier's encoder is named as HybridNet's and nnU-Net's).
 */
export function initializeWeights(net: SegmentationNetwork | ClassificationNetwork, o: InitOptions): InitReport {
  const from = o.from ?? 'medseg';
  const part = o.part ?? 'all';
  const mapping = WEIGHT_MAPPINGS[from];
  if (!mapping) throw new MedsegIoError('BAD_DATA', `unknown weight naming '${from}': choose ${Object.keys(WEIGHT_MAPPINGS).join(' or ')}`);
  if (isClassifier(net)) {
    if (from === 'monai') throw new MedsegIoError('BAD_DATA', 'MONAI DynUNet weights fit a segmentation unet, not a classifier');
    if (from === 'nnunet' && net.config.architecture !== 'hybridnet') {
      throw new MedsegIoError('BAD_DATA', `nnU-Net encoder weights fit the hybridnet classifier (instance-norm conv stages), not ${net.config.architecture}`);
    }
  } else {
    const c = net.config;
    if ((from === 'nnunet' || from === 'monai') && (c.architecture !== 'unet' || c.norm !== 'instance' || (c.upsample ?? 'transpose') !== 'transpose')) {
      throw new MedsegIoError(
        'BAD_DATA',
        `${from === 'nnunet' ? "nnU-Net weights fit medseg's unet with instance norm and transposed-convolution upsampling (nnU-Net's PlainConvUNet)" : "MONAI DynUNet weights fit medseg's unet with instance norm and transposed-convolution upsampling"}; this network is ${c.architecture} with ${c.norm} norm`,
      );
    }
  }
  const file = initWeightsFile(o.source);
  const { tensors } = readWeights(file);
  const target = net.stateDict();
  const encoder = part === 'encoder' ? encoderStateNames(net) : null;
  const loaded: string[] = [];
  const skipped: InitReport['skipped'] = [];
  try {
    const opts = isClassifier(net)
      ? { deepSupervision: false, decoderStages: 0 }
      : { deepSupervision: net.config.deepSupervision, decoderStages: net.config.features.length - 1 };
    torch.noGrad(() => {
      for (const [name, t] of tensors) {
        const m = mapping(name, opts);
        if ('skip' in m) {
          skipped.push({ name, reason: m.skip });
          continue;
        }
        const dst = target.get(m.to);
        if (!dst) skipped.push({ name, reason: `this network has no ${m.to}` });
        else if (encoder && !encoder.has(m.to)) skipped.push({ name, reason: 'not part of the encoder' });
        else if (dst.shape.join(',') !== t.shape.join(','))
          skipped.push({ name, reason: `shape [${t.shape.join(', ')}], this network's ${m.to} is [${dst.shape.join(', ')}]` });
        else if (loaded.includes(m.to)) skipped.push({ name, reason: `${m.to} was already set from another tensor` });
        else {
          dst.copy_(t.to(dst.dtype));
          loaded.push(m.to);
        }
      }
    });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  if (loaded.length === 0) {
    const why = skipped
      .slice(0, 4)
      .map((s) => `${s.name}: ${s.reason}`)
      .join('; ');
    throw new MedsegIoError('BAD_DATA', `none of its ${tensors.size} tensors fits this network (${why || 'the file is empty'})`, file);
  }
  const done = new Set(loaded);
  return { file, from, part, loaded, skipped, untouched: [...target.keys()].filter((n) => !done.has(n)) };
}
