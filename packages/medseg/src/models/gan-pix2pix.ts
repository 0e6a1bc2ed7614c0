/**
 * pix2pix (Isola et al. 2017) for mask -> image synthesis, 2D and 3D:
 * - MaskToImageGenerator: a U-Net over the one-hot mask; stride-2 conv +
 *   instance norm + LeakyReLU(0.2) down, transposed conv + instance norm +
 *   ReLU up with skip concatenation, dropout (0.5) in the two coarsest
 *   decoder stages but never the finest, as pix2pix's noise source (kept on
 *   when generating), and
 *   a linear 1x1 output (normalised intensities are not bounded, so no tanh).
 *   Inputs must be divisible by 2^(levels - 1) per axis (the caller pads).
 * - PatchDiscriminator: PatchGAN over (mask, image): kernel-4 convolutions
 *   with spectral normalisation (no other normalisation), two stride-2 and
 *   two stride-1, LeakyReLU(0.2), one real/fake score per patch.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { conv, convTranspose, type Dims } from './blocks-conv.ts';
import { SpectralNormConv } from './gan-spectral-norm.ts';

const { nn, F } = torch;

export interface GanNetworkConfig {
  dims: Dims;
  /** Classes of the mask (one-hot input channels). */
  numClasses: number;
  /** Image channels to generate. */
  channels: number;
  /** Generator features per level (default [16, 32, 64]). */
  features?: number[];
  /** Discriminator base features (default 16). */
  discriminatorFeatures?: number;
}

class Down extends nn.UnaryModule {
  conv: torch.nn.UnaryModule;
  norm: torch.nn.UnaryModule;
  constructor(dims: Dims, inC: number, outC: number, stride: number) {
    super();
    this.conv = this.module('conv', conv(dims, inC, outC, 3, { stride, padding: 1 }));
    this.norm = this.module('norm', new nn.InstanceNorm(outC, { affine: true }));
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(this.norm.forward(this.conv.forward(x)), 0.2);
  }
}

class Up extends nn.Module {
  up: torch.nn.UnaryModule;
  norm: torch.nn.UnaryModule;
  fuse: torch.nn.UnaryModule;
  fuseNorm: torch.nn.UnaryModule;
  drop: torch.nn.Dropout | null;
  constructor(dims: Dims, inC: number, outC: number, dropout: boolean) {
    super();
    this.up = this.module('up', convTranspose(dims, inC, outC, new Array(dims).fill(2), new Array(dims).fill(2)));
    this.norm = this.module('norm', new nn.InstanceNorm(outC, { affine: true }));
    this.fuse = this.module('fuse', conv(dims, 2 * outC, outC, 3, { padding: 1 }));
    this.fuseNorm = this.module('fuse_norm', new nn.InstanceNorm(outC, { affine: true }));
    this.drop = dropout ? this.module('drop', new nn.Dropout(0.5)) : null;
  }
  forward(x: Tensor, skip: Tensor): Tensor {
    let h = F.relu(this.norm.forward(this.up.forward(x)));
    h = F.relu(this.fuseNorm.forward(this.fuse.forward(torch.cat([h, skip], 1))));
    return this.drop ? this.drop.forward(h) : h;
  }
}

export class MaskToImageGenerator extends nn.Module {
  downs: torch.nn.ModuleList<Down>;
  ups: torch.nn.ModuleList<Up>;
  out: torch.nn.UnaryModule;
  constructor(readonly config: GanNetworkConfig) {
    super();
    const f = config.features ?? [16, 32, 64];
    this.downs = this.module('downs', new nn.ModuleList<Down>());
    f.forEach((c, i) => this.downs.push(new Down(config.dims, i === 0 ? config.numClasses : f[i - 1]!, c, i === 0 ? 1 : 2)));
    this.ups = this.module('ups', new nn.ModuleList<Up>());
    for (let i = f.length - 1; i > 0; i--) this.ups.push(new Up(config.dims, f[i]!, f[i - 1]!, i >= Math.max(2, f.length - 2)));
    this.out = this.module('out', conv(config.dims, f[0]!, config.channels, 1, { padding: 0 }));
  }
  /** The multiple every spatial size must be of. */
  get divisor(): number {
    return 2 ** (this.downs.length - 1);
  }
  /** One-hot mask [B, K, ...] -> image [B, C, ...]. */
  forward(mask: Tensor): Tensor {
    const skips: Tensor[] = [];
    let h = mask;
    for (const d of this.downs.items) {
      h = d.forward(h);
      skips.push(h);
    }
    this.ups.items.forEach((u, k) => {
      h = u.forward(h, skips[skips.length - 2 - k]!);
    });
    return this.out.forward(h);
  }
  /** Keeps dropout on in eval mode (pix2pix's noise at generation time). */
  setDropoutAtInference(on: boolean): void {
    for (const [, m] of this.namedModules()) if (m instanceof nn.Dropout) m.mcDropout = on;
  }
}

export class PatchDiscriminator extends nn.Module {
  layers: torch.nn.ModuleList<SpectralNormConv>;
  constructor(readonly config: GanNetworkConfig) {
    super();
    const b = config.discriminatorFeatures ?? 16;
    const chans = [config.numClasses + config.channels, b, 2 * b, 4 * b];
    this.layers = this.module('layers', new nn.ModuleList<SpectralNormConv>());
    for (let i = 0; i < 3; i++) this.layers.push(new SpectralNormConv(config.dims, chans[i]!, chans[i + 1]!, 4, { stride: i < 2 ? 2 : 1, padding: 1 }));
    this.layers.push(new SpectralNormConv(config.dims, chans[3]!, 1, 4, { stride: 1, padding: 1 }));
  }
  /** Scores [B, 1, ...patches] of (mask, image) pairs (raw: the loss decides their meaning). */
  forward(mask: Tensor, image: Tensor): Tensor {
    let h = torch.cat([mask, image], 1);
    const n = this.layers.length;
    this.layers.items.forEach((l, i) => {
      h = l.forward(h);
      if (i < n - 1) h = F.leakyRelu(h, 0.2);
    });
    return h;
  }
}
