/**
 * Training of the mask -> image GAN (models/gan-pix2pix.ts) on the
 * (label, image) patches of preprocessed cases, within a time budget or a
 * number of steps: per step one discriminator update on real and generated
 * pairs, then one generator update (adversarial + lambda * L1), Adam (2e-4,
 * betas 0.5 / 0.999) as pix2pix. Patches come from the training pipeline
 * with its spatial augmentations only (the intensity ones would teach the
 * generator augmented intensities). The loss history is summarised to judge
 * stability: a discriminator that wins outright drives its loss to ~0 and
 * the generator's adversarial loss up.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { makeBatch } from '../data/batch.ts';
import type { PreprocessedCase } from '../data/types.ts';
import type { MaskToImageGenerator, PatchDiscriminator } from '../models/gan-pix2pix.ts';
import type { AugmentationParams } from '../plan/types.ts';
import { mixSeed } from '../util/random.ts';
import { discriminatorLoss, generatorLoss, type GanLoss } from './gan-losses.ts';

const { optim } = torch;

export interface GanTrainSettings {
  patchSize: number[];
  batchSize: number;
  augmentation: AugmentationParams;
  loss?: GanLoss;
  /** L1 weight (default 100, pix2pix). */
  lambda?: number;
  lr?: number;
  minutes?: number;
  steps?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface GanLossSummary {
  discriminator: number;
  adversarial: number;
  l1: number;
}

export interface GanTrainResult {
  steps: number;
  seconds: number;
  loss: GanLoss;
  /** Mean losses over the first and the last tenth of the steps. */
  first: GanLossSummary;
  last: GanLossSummary;
  /** Whether every loss stayed finite and the discriminator did not win outright (its last-tenth loss above 5 % of its first). */
  stable: boolean;
}

/** The pipeline's augmentation with only the spatial transforms left on. */
export function spatialOnly(a: AugmentationParams): AugmentationParams {
  return {
    ...a,
    noise: { ...a.noise, p: 0 },
    blur: { ...a.blur, p: 0 },
    brightness: { ...a.brightness, p: 0 },
    contrast: { ...a.contrast, p: 0 },
    lowResolution: { ...a.lowResolution, p: 0 },
    gamma: { ...a.gamma, p: 0, pInvert: 0 },
  };
}

/** One-hot [B, K, ...] float mask of integer labels [B, ...]. */
export function oneHotMask(label: Tensor, numClasses: number): Tensor {
  const oh = torch.oneHot(label.long(), numClasses);
  const d = oh.ndim;
  return oh.permute([0, d - 1, ...Array.from({ length: d - 2 }, (_, i) => i + 1)]).float();
}

export async function trainGan(g: MaskToImageGenerator, d: PatchDiscriminator, cases: PreprocessedCase[], s: GanTrainSettings): Promise<GanTrainResult> {
  if (cases.length === 0 || cases.some((c) => !c.label)) throw new RangeError('GAN training needs labelled cases (mask -> image pairs)');
  if (s.minutes === undefined && s.steps === undefined) throw new RangeError('give a time budget (minutes) or a number of steps');
  const div = g.divisor;
  const bad = s.patchSize.find((p) => p % div !== 0);
  if (bad !== undefined) throw new RangeError(`patch size [${s.patchSize}] must be divisible by ${div} per axis for the generator`);
  const kind = s.loss ?? 'lsgan';
  const lambda = s.lambda ?? 100;
  const K = g.config.numClasses;
  const optG = new optim.Adam(g.parameters(), { lr: s.lr ?? 2e-4, betas: [0.5, 0.999] });
  const optD = new optim.Adam(d.parameters(), { lr: s.lr ?? 2e-4, betas: [0.5, 0.999] });
  const plan = { patchSize: s.patchSize, batchSize: s.batchSize, augmentation: spatialOnly(s.augmentation), oversampleForeground: 0.5 };
  const hist: GanLossSummary[] = [];
  const t0 = Date.now();
  g.train();
  d.train();
  try {
    for (let step = 0; ; step++) {
      if (s.steps !== undefined && step >= s.steps) break;
      if (s.minutes !== undefined && (Date.now() - t0) / 60000 >= s.minutes) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
      const b = makeBatch(cases, plan, mixSeed(s.seed ?? 12345, step), true);
      const h = torch.tidy(() => {
        const real = torch.tensor(b.image, b.shape);
        const mask = oneHotMask(torch.tensor(b.label, [b.shape[0]!, ...b.shape.slice(2)]), K);
        const fake = g.forward(mask);
        const lossD = discriminatorLoss(kind, d.forward(mask, real), d.forward(mask, fake.detach()));
        optD.zeroGrad();
        lossD.backward();
        optD.step();
        const gl = generatorLoss(kind, d.forward(mask, fake), fake, real, lambda);
        optG.zeroGrad();
        gl.total.backward();
        optG.step();
        // The discriminator's parameters got gradients from the generator's backward too; they are cleared before its next step.
        d.zeroGrad();
        return { discriminator: lossD.item(), adversarial: gl.adversarial.item(), l1: gl.l1.item() };
      });
      if (![h.discriminator, h.adversarial, h.l1].every(Number.isFinite)) throw new Error(`GAN training diverged at step ${step}: ${JSON.stringify(h)}`);
      hist.push(h);
      if (s.log && step % 25 === 0) s.log(`gan step ${step}: D ${h.discriminator.toFixed(4)}  G adv ${h.adversarial.toFixed(4)}  L1 ${h.l1.toFixed(4)}`);
    }
  } finally {
    optG.dispose();
    optD.dispose();
  }
  const tenth = Math.max(1, Math.floor(hist.length / 10));
  const mean = (a: GanLossSummary[]): GanLossSummary => ({
    discriminator: a.reduce((x, y) => x + y.discriminator, 0) / Math.max(1, a.length),
    adversarial: a.reduce((x, y) => x + y.adversarial, 0) / Math.max(1, a.length),
    l1: a.reduce((x, y) => x + y.l1, 0) / Math.max(1, a.length),
  });
  const first = mean(hist.slice(0, tenth));
  const last = mean(hist.slice(-tenth));
  return {
    steps: hist.length,
    seconds: (Date.now() - t0) / 1000,
    loss: kind,
    first,
    last,
    stable: hist.length > 0 && last.discriminator > 0.05 * Math.abs(first.discriminator),
  };
}
