/**
 * Learned deformable registration (VoxelMorph's scheme): the zoo's U-Net
 * reads the fixed image and the affinely aligned moving image and predicts a
 * displacement (or a velocity integrated by scaling and squaring) on the
 * fixed grid; it is trained without labels on similarity + smoothness
 * (+ warped-label Dice when the pairs have labels) within a time budget.
 * A model folder holds registration.json (the settings) and
 * weights.safetensors.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { F } from '@medseg/torch';
import { MedsegIoError } from '../io/errors.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { createNetwork } from '../models/registry.ts';
import { affineTheta, resampleAffine } from './affine.ts';
import { displacementOf, registrationLoss, type LabelPair } from './deformable.ts';
import type { Mat4 } from './grid.ts';
import type { PlacedImage } from './pyramid.ts';
import type { SimilarityName } from './similarity.ts';

export interface RegistrationModelSettings {
  features: number[];
  diffeomorphic: boolean;
  integrationSteps: number;
  similarity: SimilarityName;
  window: number;
  smoothness: number;
  labelWeight: number;
}

export const DEFAULT_MODEL_SETTINGS: RegistrationModelSettings = {
  features: [16, 32, 32, 32],
  diffeomorphic: false,
  integrationSteps: 7,
  similarity: 'lncc',
  window: 9,
  smoothness: 1,
  labelWeight: 1,
};

const SETTINGS_FILE = 'registration.json';
const WEIGHTS_FILE = 'weights.safetensors';

function buildNetwork(s: RegistrationModelSettings): SegmentationNetwork {
  const n = s.features.length;
  return createNetwork({
    architecture: 'unet',
    dims: 3,
    inChannels: 2,
    numClasses: 3,
    features: s.features,
    kernelSizes: s.features.map(() => [3, 3, 3]),
    strides: s.features.map((_, i) => (i === 0 ? [1, 1, 1] : [2, 2, 2])),
    deepSupervision: false,
    norm: 'instance',
    upsample: 'interpolate',
    extra: { stages: n },
  });
}

export class RegistrationModel {
  private constructor(
    readonly settings: RegistrationModelSettings,
    readonly net: SegmentationNetwork,
  ) {}

  /** A new model; the field head starts near zero so training starts from the affine. */
  static create(settings: Partial<RegistrationModelSettings> = {}): RegistrationModel {
    const s = { ...DEFAULT_MODEL_SETTINGS, ...settings };
    const net = buildNetwork(s);
    torch.noGrad(() => {
      for (const [name, p] of net.namedParameters()) {
        if (!name.startsWith('seg_heads.')) continue;
        if (name.endsWith('bias')) p.zero_();
        else p.copy_(torch.tidy(() => torch.randn(p.shape).mul(1e-5)));
      }
    });
    return new RegistrationModel(s, net);
  }

  static load(dir: string): RegistrationModel {
    let s: RegistrationModelSettings;
    try {
      s = { ...DEFAULT_MODEL_SETTINGS, ...(JSON.parse(readFileSync(join(dir, SETTINGS_FILE), 'utf8')) as Partial<RegistrationModelSettings>) };
    } catch (e) {
      throw new MedsegIoError('NOT_FOUND', `not a registration model folder (${SETTINGS_FILE}: ${(e as Error).message})`, dir);
    }
    const net = buildNetwork(s);
    const { tensors } = torch.loadSafetensors(join(dir, WEIGHTS_FILE));
    net.loadStateDict(tensors);
    for (const t of tensors.values()) t.dispose();
    net.eval();
    return new RegistrationModel(s, net);
  }

  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    torch.saveSafetensors(join(dir, WEIGHTS_FILE), this.net.stateDict(), { format: 'medseg-registration' });
    writeFileSync(join(dir, SETTINGS_FILE), `${JSON.stringify(this.settings, null, 2)}\n`);
  }

  /** The network's field for a fixed image and the moving image already on its grid ([1, 1, z, y, x] each). */
  forward(fixed: Tensor, movingOnFixed: Tensor): Tensor {
    return torch.tidy(() => {
      const shape = fixed.shape.slice(2);
      const multiple = 2 ** (this.settings.features.length - 1);
      const padded = shape.map((n) => Math.ceil(n / multiple) * multiple);
      // F.pad lists the last axis first
      const pad = [2, 1, 0].flatMap((k) => [0, padded[k]! - shape[k]!]);
      const x = F.pad(torch.cat([fixed, movingOnFixed], 1), pad);
      const out = this.net.forward(x) as Tensor;
      const field = out.narrow(2, 0, shape[0]!).narrow(3, 0, shape[1]!).narrow(4, 0, shape[2]!);
      return displacementOf(field, shape, this.settings);
    });
  }

  /** Displacement [1, 3, z, y, x] (fixed voxels) for one pair, applied before the affine. */
  predict(fixed: PlacedImage, moving: PlacedImage, affine: Mat4): Tensor {
    return torch.noGrad(() => torch.tidy(() => this.forward(fixed.image, resampleAffine(moving, fixed.geometry, affine))));
  }
}

export interface TrainingPair {
  fixed: PlacedImage;
  moving: PlacedImage;
  affine: Mat4;
  labels?: LabelPair | null;
}

export interface TrainOptions {
  /** Wall-clock budget in seconds. */
  seconds: number;
  lr?: number;
  /** Stop earlier after this many steps. */
  maxSteps?: number;
  seed?: number;
  onStep?: (step: number, loss: number) => void;
}

/** Adam on randomly drawn pairs until the time budget is spent; returns the steps taken and the mean loss of the last 10. */
export function trainRegistrationModel(model: RegistrationModel, pairs: readonly TrainingPair[], o: TrainOptions): { steps: number; loss: number } {
  if (pairs.length === 0) throw new RangeError('no training pairs');
  const opt = new torch.optim.Adam(model.net.parameters(), { lr: o.lr ?? 1e-3 });
  model.net.train();
  const start = performance.now();
  let seed = o.seed ?? 1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const recent: number[] = [];
  let steps = 0;
  while ((performance.now() - start) / 1000 < o.seconds && steps < (o.maxSteps ?? Infinity)) {
    const pair = pairs[Math.floor(random() * pairs.length)]!;
    const loss = torch.tidy(() => {
      const theta = affineTheta(pair.affine, pair.fixed.geometry, pair.moving.geometry);
      const movingOnFixed = torch.noGrad(() => resampleAffine(pair.moving, pair.fixed.geometry, pair.affine));
      const disp = model.forward(pair.fixed.image, movingOnFixed);
      const l = registrationLoss(pair.fixed.image, pair.moving.image, theta, disp, model.settings, pair.labels);
      opt.zeroGrad();
      l.backward();
      opt.step();
      return l.item();
    });
    steps++;
    recent.push(loss);
    if (recent.length > 10) recent.shift();
    o.onStep?.(steps, loss);
  }
  model.net.eval();
  return { steps, loss: recent.reduce((a, b) => a + b, 0) / Math.max(1, recent.length) };
}
