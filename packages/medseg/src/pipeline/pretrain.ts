/**
 * `medseg pretrain`: self-supervised pretraining (train/ssl-pretrain.ts) of
 * the network of a plan on unlabelled images, written as a pretraining
 * folder (train/ssl-folder.ts) that `medseg train --init <folder>
 * --init-part encoder` starts from. The images are a dataset's (its training
 * and test images; labels are not read) or a folder of image files; the plan
 * is the one given, else the dataset's stored plan, else a new plan of the
 * dataset (a folder of images needs a plan: the plan of the dataset the
 * network will be fine-tuned on, so that the encoder fits).
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '@medseg/torch';
import { loadRawCase } from '../data/case.ts';
import { endingOf, readDataset, readImageFolder, type DatasetCase } from '../data/dataset.ts';
import { preprocessCase } from '../data/preprocess.ts';
import type { PreprocessedCase } from '../data/types.ts';
import { MedsegIoError } from '../io/errors.ts';
import { encoderStateNames } from '../models/encoder-parts.ts';
import { createNetwork } from '../models/registry.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { loadPlan, savePlan } from '../plan/store.ts';
import type { Plan } from '../plan/types.ts';
import { validatePlan } from '../plan/validate.ts';
import { PRETRAINED_FILES, PRETRAINED_FORMAT, type PretrainedDescriptor } from '../train/ssl-folder.ts';
import { pretrainNetwork, pretrainNetworkConfig, type PretrainMethod, type PretrainResult } from '../train/ssl-pretrain.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';
import { hasPlanningChoices, planDataset, storedPlanExists, storedPlanPath, type PlanningChoices } from './plan-dataset.ts';

export interface PretrainModelOptions {
  /** A dataset folder (dataset.json) or a folder of image files. */
  images: string;
  /** The pretraining folder to write. */
  out: string;
  method: PretrainMethod;
  /** A plan file or plan (required for a folder of images). */
  plan?: string | Plan;
  /** Planning choices for a dataset without a given plan (architecture, dims). */
  architecture?: string;
  dims?: PlanningChoices['dims'];
  /** Time budget (default 10 minutes) or a fixed number of steps (tests). */
  minutes?: number;
  steps?: number;
  /** Patches per step (default: the plan's batch; contrastive at least 8, since the other patches of the batch are the negatives). */
  batchSize?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface PretrainModelResult {
  dir: string;
  weightsFile: string;
  plan: Plan;
  descriptor: PretrainedDescriptor;
  result: PretrainResult;
}

/**
 * Image files of a plain folder as unlabelled cases: one file per case, named
 * by the file, or, for a plan with several channels, `<id>_<cccc><ending>`
 * per channel as in a dataset's imagesTr/ (one file ending throughout).
 */
function folderCases(dir: string, nChannels: number): DatasetCase[] {
  const files = readdirSync(dir)
    .filter((f) => endingOf(f) && statSync(join(dir, f)).isFile())
    .sort();
  if (files.length === 0) throw new MedsegIoError('NOT_FOUND', 'no image files (.nii.gz, .nrrd, .png, ...) in the folder', dir);
  if (nChannels > 1) {
    const endings = new Set(files.map((f) => endingOf(f)!.toLowerCase()));
    if (endings.size > 1)
      throw new MedsegIoError('BAD_DATA', `a folder of ${nChannels}-channel images needs one file ending, not ${[...endings].join(', ')}`, dir);
    return readImageFolder(dir, [...endings][0]!, nChannels);
  }
  return files.map((f) => ({ id: f.slice(0, f.length - endingOf(f)!.length), imagePaths: [join(dir, f)], labelPath: null }));
}

async function resolvePlanAndCases(o: PretrainModelOptions): Promise<{ plan: Plan; cases: DatasetCase[] }> {
  const src = resolve(o.images);
  if (!existsSync(src) || !statSync(src).isDirectory()) throw new MedsegIoError('NOT_FOUND', 'no such dataset or image folder', src);
  const given = typeof o.plan === 'string' ? loadPlan(o.plan) : o.plan ? validatePlan(o.plan) : null;
  if (!existsSync(join(src, 'dataset.json'))) {
    if (!given) throw new MedsegIoError('BAD_DATA', 'a folder of images needs --plan (the plan of the dataset to fine-tune on, so the encoder fits)', src);
    return { plan: given, cases: folderCases(src, given.channels.length) };
  }
  const ds = readDataset(src);
  const cases = [...ds.training, ...ds.test].map((c) => ({ ...c, labelPath: null }));
  if (given) return { plan: given, cases };
  const choices: PlanningChoices = { architecture: o.architecture, dims: o.dims };
  if (!hasPlanningChoices(choices) && storedPlanExists(ds.dir)) return { plan: loadPlan(storedPlanPath(ds.dir)), cases };
  const { plan } = await planDataset({ dataset: ds, choices, out: null, log: o.log });
  return { plan, cases };
}

/** Pretrains the plan's network on the images and writes the pretraining folder. */
export async function pretrainModel(o: PretrainModelOptions): Promise<PretrainModelResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const { plan, cases } = await resolvePlanAndCases(o);
  mkdirSync(o.out, { recursive: true });
  const pre: PreprocessedCase[] = [];
  for (const c of cases) pre.push(preprocessCase(await loadRawCase(c, { withLabel: false }), plan));
  log(`pretrain: ${pre.length} images, ${plan.dims} ${plan.network.architecture}, patch [${plan.patchSize}]`);
  torch.manualSeed(o.seed ?? 12345);
  const config = o.method === 'mim' ? pretrainNetworkConfig(plan.network) : plan.network;
  const net = createNetwork(config);
  try {
    const result = await pretrainNetwork(net, pre, {
      method: o.method,
      patchSize: plan.patchSize,
      batchSize: o.batchSize ?? (o.method === 'contrastive' ? Math.max(8, plan.batchSize) : plan.batchSize),
      augmentation: plan.augmentation,
      ...(o.steps !== undefined ? { steps: o.steps } : { minutes: o.minutes ?? 10 }),
      seed: o.seed,
      log,
    });
    const weightsFile = join(o.out, PRETRAINED_FILES.weights);
    saveWeights(weightsFile, net.stateDict(), { 'medseg.pretrained': `${o.method}/${result.kind}` });
    await savePlan(join(o.out, PRETRAINED_FILES.plan), plan);
    const descriptor: PretrainedDescriptor = {
      format: PRETRAINED_FORMAT,
      version: 1,
      method: o.method,
      kind: result.kind,
      architecture: plan.network.architecture,
      dims: plan.dims,
      network: config,
      plan: PRETRAINED_FILES.plan,
      encoderTensors: [...encoderStateNames(net)],
      images: pre.length,
      steps: result.steps,
      minutes: result.seconds / 60,
      firstLoss: result.firstLoss,
      lastLoss: result.lastLoss,
      ...(result.maskCell ? { maskCell: result.maskCell } : {}),
      ...(result.maskRatio !== undefined ? { maskRatio: result.maskRatio } : {}),
      createdAt: new Date().toISOString(),
    };
    writeJsonAtomicSync(join(o.out, PRETRAINED_FILES.descriptor), descriptor);
    log(
      `pretrain ${result.kind}: ${result.steps} steps in ${result.seconds.toFixed(0)} s, loss ${result.firstLoss.toFixed(4)} -> ${result.lastLoss.toFixed(4)}`,
    );
    return { dir: o.out, weightsFile, plan, descriptor, result };
  } finally {
    net.dispose();
  }
}
