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
import type { SegmentationNetwork } from './config.ts';
import { createNetwork } from './registry.ts';
import { foldFile, modelFile, type CheckpointChoice } from '../plan/model-folder.ts';
import { loadWeightsInto } from '../plan/model-weights.ts';
import { enhanceSettings, type EnhanceSettings } from '../plan/enhance-settings.ts';
import { writeJsonAtomicSync } from '../util/atomic-write.ts';

export const ENHANCE_FILE = 'enhance.json';

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

  /** The settings of a model folder's enhance.json; a segmentation model folder (plan.json) or another folder is a MedsegIoError. */
  static readSettings(dir: string): EnhanceSettings {
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
    try {
      return enhanceSettings(raw);
    } catch (e) {
      throw new MedsegIoError('BAD_DATA', `${ENHANCE_FILE}: ${(e as Error).message}`, dir);
    }
  }

  /** A new network with the settings of a model folder (a resumed run loads its weights from the checkpoint). */
  static fromSettingsFile(dir: string): EnhancementModel {
    const s = EnhancementModel.readSettings(dir);
    return new EnhancementModel(s, buildNetwork(s));
  }

  /** Reads a model folder's settings and weights (`choice`, else the other of best and final). */
  static load(dir: string, choice: CheckpointChoice = 'best'): EnhancementModel {
    const s = EnhancementModel.readSettings(dir);
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
