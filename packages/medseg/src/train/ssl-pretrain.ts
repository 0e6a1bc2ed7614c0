/**
 * Self-supervised pretraining of a segmentation network on unlabelled
 * patches, within a time budget or a number of steps.
 * - 'mim', masked image modelling: the network (built with as many output
 *   channels as input channels) sees the patch with a masked part set to 0
 *   (the mean of normalised intensities) and reconstructs it; the loss counts
 *   the masked voxels only. Transformer encoders get MAE-style masking (a
 *   random 60 % of the cells of the encoder's token grid, squared error);
 *   CNNs get inpainting (random cubes until 30 % of the voxels are hidden,
 *   L1). The hybrid encoders convolve before they tokenise, so masked cells
 *   are blanked at the input (as SimMIM) instead of being dropped from the
 *   token sequence as in MAE's pure ViT.
 * - 'contrastive', SimCLR: two views of each patch through the pipeline's
 *   spatial and intensity augmentations (each view draws its own; no colour
 *   jitter: brightness, contrast and gamma scale intensities, which keeps
 *   grey images grey), the deepest encoder features average-pooled, a
 *   two-layer projection head, NT-Xent. The head is dropped afterwards.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { augmentSample } from '../data/augment.ts';
import { makeBatch } from '../data/batch.ts';
import { samplePatch } from '../data/sampler.ts';
import type { PreprocessedCase } from '../data/types.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { architectureInfo } from '../models/registry.ts';
import type { AugmentationParams, NetworkConfig } from '../plan/types.ts';
import { mixSeed, Rng } from '../util/random.ts';
import { cubeMask, patchMask } from './ssl-masking.ts';
import { maskedReconstructionLoss, ntXentLoss } from './ssl-losses.ts';

const { nn, optim } = torch;

export type PretrainMethod = 'mim' | 'contrastive';
/** What a method amounts to for an architecture. */
export type PretrainKind = 'mae' | 'inpainting' | 'simclr';

export interface PretrainSettings {
  method: PretrainMethod;
  patchSize: number[];
  batchSize: number;
  augmentation: AugmentationParams;
  /** Stop after this many minutes (default: no limit; give minutes or steps). */
  minutes?: number;
  /** Stop after this many steps. */
  steps?: number;
  /** AdamW learning rate (default 1e-3) and weight decay (default 0.05, as MAE). */
  lr?: number;
  weightDecay?: number;
  /** Share of the patch hidden (default 0.6 for MAE, 0.3 for inpainting). */
  maskRatio?: number;
  /** NT-Xent temperature (default 0.1). */
  temperature?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface PretrainResult {
  kind: PretrainKind;
  steps: number;
  seconds: number;
  /** Mean loss of the first and of the last tenth of the steps. */
  firstLoss: number;
  lastLoss: number;
  /** The MAE mask cell (voxels per axis), for 'mae'. */
  maskCell?: number[];
  maskRatio?: number;
}

/** The method's form for an architecture: MAE for transformer encoders, inpainting for CNNs. */
export function pretrainKind(method: PretrainMethod, architecture: string): PretrainKind {
  if (method === 'contrastive') return 'simclr';
  return architectureInfo(architecture).type.includes('transformer') ? 'mae' : 'inpainting';
}

/** The network config that pretraining builds: the plan's, with one output per input channel (the reconstruction). */
export function pretrainNetworkConfig(network: NetworkConfig): NetworkConfig {
  return { ...network, numClasses: network.inChannels };
}

/** MAE's mask cell: the encoder's total stride at stage 3 (its token grid), at most half the patch. */
export function maskCell(network: NetworkConfig, patch: number[]): number[] {
  const upto = network.strides.slice(0, Math.min(4, network.strides.length));
  return patch.map((p, a) =>
    Math.max(
      1,
      Math.min(
        Math.floor(p / 2),
        upto.reduce((s, st) => s * st[a]!, 1),
      ),
    ),
  );
}

/** The deepest encoder activation the network recorded in its last forward (the graph's own tensor), average-pooled to [B, F]. */
function pooledEncoder(net: SegmentationNetwork): Tensor {
  let best: Tensor | null = null;
  let depth = -1;
  for (const [name, t] of net.lastActivations?.() ?? []) {
    const m = /^encoder\.stage(\d+)$/.exec(name);
    if (m && Number(m[1]) > depth) {
      depth = Number(m[1]);
      best = t;
    }
  }
  if (!best) throw new Error(`${net.config.architecture} records no encoder.stage activations: contrastive pretraining needs them`);
  return best.flatten(2).mean(2);
}

class ProjectionHead extends nn.Module {
  fc1: torch.nn.Linear;
  fc2: torch.nn.Linear;
  constructor(inF: number, outF = 64) {
    super();
    this.fc1 = this.module('fc1', new nn.Linear(inF, inF));
    this.fc2 = this.module('fc2', new nn.Linear(inF, outF));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(torch.F.relu(this.fc1.forward(x)));
  }
}

/** Two independently augmented views of the same random patches, [B, C, ...patch] each. */
export function contrastiveViews(cases: PreprocessedCase[], s: PretrainSettings, seed: number): { a: Float32Array; b: Float32Array; shape: number[] } {
  const rng = new Rng(seed);
  const patch = s.patchSize;
  const C = cases[0]!.channels;
  const pn = patch.reduce((x, y) => x * y, 1);
  const a = new Float32Array(s.batchSize * C * pn);
  const b = new Float32Array(s.batchSize * C * pn);
  for (let i = 0; i < s.batchSize; i++) {
    const p = samplePatch(cases[rng.int(cases.length)]!, patch, 0, rng);
    const sample = { image: p.image, label: null, channels: C, shape: patch };
    a.set(augmentSample(sample, s.augmentation, rng).image, i * C * pn);
    b.set(augmentSample(sample, s.augmentation, rng).image, i * C * pn);
  }
  return { a, b, shape: [s.batchSize, C, ...patch] };
}

const firstOutput = (y: Tensor | Tensor[]): Tensor => (Array.isArray(y) ? y[0]! : y);

/** Pretrains `net` in place. For 'mim' the net must output one channel per input channel (pretrainNetworkConfig). */
export async function pretrainNetwork(net: SegmentationNetwork, cases: PreprocessedCase[], s: PretrainSettings): Promise<PretrainResult> {
  if (cases.length === 0) throw new RangeError('no images to pretrain on');
  if (s.minutes === undefined && s.steps === undefined) throw new RangeError('give a time budget (minutes) or a number of steps');
  const c = net.config;
  const kind = pretrainKind(s.method, c.architecture);
  if (kind !== 'simclr' && c.numClasses !== c.inChannels)
    throw new RangeError(`masked image modelling reconstructs the input: the network needs ${c.inChannels} outputs, it has ${c.numClasses}`);
  if (kind === 'simclr' && s.batchSize < 2) throw new RangeError('contrastive pretraining needs a batch of at least 2 patches');
  const seed = s.seed ?? 12345;
  const ratio = s.maskRatio ?? (kind === 'mae' ? 0.6 : 0.3);
  const cell = kind === 'mae' ? maskCell(c, s.patchSize) : undefined;
  let head: ProjectionHead | null = null;
  if (kind === 'simclr') head = new ProjectionHead(c.features[c.features.length - 1]!);
  const params = [...net.parameters(), ...(head?.parameters() ?? [])];
  const opt = new optim.AdamW(params, { lr: s.lr ?? 1e-3, weightDecay: s.weightDecay ?? 0.05 });
  const losses: number[] = [];
  const t0 = Date.now();
  const batchPlan = { patchSize: s.patchSize, batchSize: s.batchSize, augmentation: s.augmentation, oversampleForeground: 0 };
  net.train();
  try {
    for (let step = 0; ; step++) {
      if (s.steps !== undefined && step >= s.steps) break;
      if (s.minutes !== undefined && (Date.now() - t0) / 60000 >= s.minutes) break;
      // Yield so Node can run deferred native cleanup (see trainer.ts).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const stepSeed = mixSeed(seed, step);
      const loss = torch.tidy(() => {
        let l: Tensor;
        if (kind === 'simclr') {
          const v = contrastiveViews(cases, s, stepSeed);
          const embed = (x: Float32Array) => {
            net.forward(torch.tensor(x, v.shape));
            return head!.forward(pooledEncoder(net));
          };
          l = ntXentLoss(embed(v.a), embed(v.b), s.temperature ?? 0.1);
        } else {
          const b = makeBatch(cases, batchPlan, stepSeed, true);
          const rng = new Rng(mixSeed(stepSeed, 1));
          const spatial = b.shape.slice(2);
          const m = kind === 'mae' ? patchMask(b.shape[0]!, spatial, cell!, ratio, rng) : cubeMask(b.shape[0]!, spatial, ratio, rng);
          const x = torch.tensor(b.image, b.shape);
          const mask = torch.tensor(m, [b.shape[0]!, 1, ...spatial]);
          const y = firstOutput(net.forward(x.mul(mask.rsub(1))));
          l = maskedReconstructionLoss(y, x, mask, kind === 'mae' ? 'l2' : 'l1');
        }
        opt.zeroGrad();
        l.backward();
        optim.clipGradNorm(params, 12);
        opt.step();
        return l.item();
      });
      if (!Number.isFinite(loss)) throw new Error(`pretraining diverged: loss ${loss} at step ${step} (lower the learning rate?)`);
      losses.push(loss);
      if (s.log && step % 20 === 0) s.log(`pretrain ${kind} step ${step}: loss ${loss.toFixed(4)}`);
    }
  } finally {
    opt.dispose();
    head?.dispose();
  }
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN);
  return {
    kind,
    steps: losses.length,
    seconds: (Date.now() - t0) / 1000,
    firstLoss: mean(losses.slice(0, tenth)),
    lastLoss: mean(losses.slice(-tenth)),
    ...(cell ? { maskCell: cell } : {}),
    ...(kind !== 'simclr' ? { maskRatio: ratio } : {}),
  };
}
