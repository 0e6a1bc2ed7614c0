/**
 * An image-to-image enhancement model: the zoo's U-Net with one output
 * channel, predicting the residual between the degraded image (noisy, or
 * thick slices interpolated back to thin) and the clean one, on images
 * normalised by their 99th-percentile foreground intensity. 2D models work
 * plane by plane, 3D models on patches.
 *
 * A model folder holds enhance.json (the settings and a training summary),
 * model_best.safetensors / model_final.safetensors, and while training
 * checkpoint_latest.safetensors and log.jsonl.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { createNetwork } from '../models/registry.ts';
import { foldFile, modelFile, type CheckpointChoice } from '../plan/model-folder.ts';
import { loadWeightsInto } from '../plan/model-weights.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';

export type EnhanceTask = 'denoise' | 'sr';
/** Axis of a [nz, ny, nx] array: 0 = z. */
export type VolumeAxis = 0 | 1 | 2;

export interface EnhanceSettings {
  task: EnhanceTask;
  dims: 2 | 3;
  /** U-Net feature channels per stage, highest resolution first. */
  features: number[];
  /** Training patch and sliding-window tile, [z, y, x] (3D) or the plane's [rows, columns] (2D). */
  patch: number[];
  /** Denoising: Rician noise level (fraction of the 99th-percentile foreground) of the training pairs; 0 = the data's own noise. */
  noise: number;
  /** Denoising: Noise2Void blind-spot training on the (noisy) images alone. */
  selfSupervised: boolean;
  /** Super-resolution: the through-plane factor (thick slices of `factor` thin ones). */
  factor: number;
  /** Super-resolution: the through-plane axis. */
  axis: VolumeAxis;
  loss: 'l1' | 'mse';
}

export const DEFAULT_ENHANCE_SETTINGS: EnhanceSettings = {
  task: 'denoise',
  dims: 2,
  features: [16, 32, 64],
  patch: [64, 64],
  noise: 0.05,
  selfSupervised: false,
  factor: 2,
  axis: 0,
  loss: 'l1',
};

export const ENHANCE_FILE = 'enhance.json';

/** Checks settings a user can get wrong; returns them completed. */
export function enhanceSettings(s: Partial<EnhanceSettings>): EnhanceSettings {
  const out = { ...DEFAULT_ENHANCE_SETTINGS, ...s };
  if (s.patch === undefined && out.dims === 3) out.patch = [32, 32, 32];
  if (out.task !== 'denoise' && out.task !== 'sr') throw new RangeError(`enhancement task must be denoise or sr, got ${String(out.task)}`);
  if (out.dims !== 2 && out.dims !== 3) throw new RangeError(`dims must be 2 or 3, got ${String(out.dims)}`);
  if (out.task === 'sr' && out.factor !== 2 && out.factor !== 4) throw new RangeError(`super-resolution factor must be 2 or 4, got ${out.factor}`);
  if (!(out.noise >= 0 && out.noise < 1)) throw new RangeError(`noise level must be in [0, 1), got ${out.noise}`);
  if (out.task === 'denoise' && !out.selfSupervised && !(out.noise > 0))
    throw new RangeError('supervised denoising needs a noise level > 0 to make its noisy inputs');
  if (![0, 1, 2].includes(out.axis)) throw new RangeError(`axis must be 0 (z), 1 (y) or 2 (x), got ${out.axis}`);
  const multiple = 2 ** (out.features.length - 1);
  if (out.patch.length !== out.dims || out.patch.some((p) => !Number.isInteger(p) || p < multiple || p % multiple !== 0)) {
    throw new RangeError(`patch [${out.patch}] must have ${out.dims} sizes, each a multiple of ${multiple}`);
  }
  return out;
}

/** The axis a 2D model's planes are stacked along: z, unless z is the super-resolution axis (then y, so each plane holds it). */
export function sliceAxis(s: Pick<EnhanceSettings, 'task' | 'axis'>): VolumeAxis {
  return s.task === 'sr' && s.axis === 0 ? 1 : 0;
}

function buildNetwork(s: EnhanceSettings): SegmentationNetwork {
  const one = s.dims === 3 ? [1, 1, 1] : [1, 1];
  return createNetwork({
    architecture: 'unet',
    dims: s.dims,
    inChannels: 1,
    numClasses: 1,
    features: s.features,
    kernelSizes: s.features.map(() => one.map(() => 3)),
    strides: s.features.map((_, i) => (i === 0 ? one : one.map(() => 2))),
    deepSupervision: false,
    norm: 'instance',
    extra: { stages: s.features.length },
  });
}

export class EnhancementModel {
  private constructor(
    readonly settings: EnhanceSettings,
    readonly net: SegmentationNetwork,
  ) {}

  /** A new model whose output head starts at zero: it begins as the identity on its input. */
  static create(settings: Partial<EnhanceSettings>): EnhancementModel {
    const s = enhanceSettings(settings);
    const net = buildNetwork(s);
    torch.noGrad(() => {
      for (const [name, p] of net.namedParameters()) if (name.startsWith('seg_heads.')) p.zero_();
    });
    return new EnhancementModel(s, net);
  }

  /** Reads a model folder; a segmentation model folder (plan.json) or another folder is a MedsegIoError. */
  static load(dir: string, choice: CheckpointChoice = 'best'): EnhancementModel {
    const file = join(dir, ENHANCE_FILE);
    if (!existsSync(file)) {
      if (existsSync(modelFile(dir, 'plan'))) {
        throw new MedsegIoError(
          'UNSUPPORTED',
          `a segmentation model folder (it holds plan.json), not an enhancement model (${ENHANCE_FILE}): use \`medseg predict\` with it`,
          dir,
        );
      }
      throw new MedsegIoError('NOT_FOUND', `not an enhancement model folder (no ${ENHANCE_FILE})`, dir);
    }
    let raw: Partial<EnhanceSettings>;
    try {
      raw = (JSON.parse(readFileSync(file, 'utf8')) as { settings: Partial<EnhanceSettings> }).settings;
    } catch (e) {
      throw new MedsegIoError('CORRUPT', `${ENHANCE_FILE} is not valid JSON (${(e as Error).message})`, dir);
    }
    const s = enhanceSettings(raw);
    const weights = [foldFile(dir, choice), foldFile(dir, choice === 'best' ? 'final' : 'best')].find((p) => existsSync(p));
    if (!weights) throw new MedsegIoError('NOT_FOUND', 'the enhancement model folder holds no weights (model_best or model_final.safetensors)', dir);
    const net = buildNetwork(s);
    loadWeightsInto(net, weights);
    net.eval();
    return new EnhancementModel(s, net);
  }

  /** Writes enhance.json (the settings and `summary`); the trainer writes the weights. */
  writeSettings(dir: string, summary: Record<string, unknown> = {}): void {
    mkdirSync(dir, { recursive: true });
    writeJsonAtomicSync(join(dir, ENHANCE_FILE), { format: 'medseg-enhance', settings: this.settings, ...summary });
  }

  /** The restored image for degraded input [N, 1, ...spatial] (spatial a multiple of 2^(stages-1)): input + the network's residual. */
  forward(x: Tensor): Tensor {
    return torch.tidy(() => x.add(this.net.forward(x) as Tensor));
  }
}
