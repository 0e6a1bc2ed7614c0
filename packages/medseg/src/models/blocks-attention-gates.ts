/** Attention on CNN feature maps: the additive attention gate and CBAM. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { conv, makeNorm, type Dims } from './blocks-conv.ts';

const { nn, F } = torch;
type Unary = torch.nn.UnaryModule;

/**
 * Additive attention gate (Oktay et al., Attention U-Net): the gating signal g
 * (coarser decoder features) decides which skip positions pass:
 * alpha = sigmoid(psi(relu(W_x x + W_g up(g)))), output x * alpha. The gating
 * signal is resampled to the skip's grid, so any stride works.
 */
export class AttentionGate extends nn.Module {
  wx: Unary;
  wg: Unary;
  psi: Unary;
  norm: Unary;
  /** The last attention coefficients [N, 1, ...skip spatial]. */
  lastAlpha: Tensor | null = null;
  constructor(dims: Dims, skipC: number, gateC: number, interC: number, normKind: NetworkConfig['norm']) {
    super();
    this.wx = this.module('W_x', conv(dims, skipC, interC, 1, { padding: 0, bias: false }));
    this.wg = this.module('W_g', conv(dims, gateC, interC, 1, { padding: 0 }));
    this.psi = this.module('psi', conv(dims, interC, 1, 1, { padding: 0 }));
    this.norm = this.module('norm', makeNorm(normKind, skipC));
  }
  forward(x: Tensor, g: Tensor): Tensor {
    const size = x.shape.slice(2);
    let gg = this.wg.forward(g);
    if (gg.shape.slice(2).join(',') !== size.join(',')) gg = F.interpolate(gg, { size, mode: 'linear' });
    const alpha = F.sigmoid(this.psi.forward(F.relu(this.wx.forward(x).add(gg))));
    this.lastAlpha = alpha;
    return this.norm.forward(x.mul(alpha));
  }
}

/**
 * CBAM (Woo et al.): channel attention from a shared MLP over average- and
 * max-pooled features, then spatial attention from a conv over the channel
 * mean and max maps.
 */
export class CBAM extends nn.UnaryModule {
  fc1: Unary;
  fc2: Unary;
  spatial: Unary;
  lastSpatial: Tensor | null = null;
  lastChannel: Tensor | null = null;
  constructor(
    readonly dims: Dims,
    channels: number,
    reduction = 4,
    spatialKernel = 7,
  ) {
    super();
    // At least min(C, 8) hidden units: with very few, every ReLU unit can be dead
    // for a batch and the channel MLP stops learning.
    const hidden = Math.max(Math.min(channels, 8), Math.floor(channels / reduction));
    this.fc1 = this.module('fc1', conv(dims, channels, hidden, 1, { padding: 0 }));
    this.fc2 = this.module('fc2', conv(dims, hidden, channels, 1, { padding: 0 }));
    this.spatial = this.module('spatial', conv(dims, 2, 1, spatialKernel));
  }
  forward(x: Tensor): Tensor {
    const spatialAxes = x.shape.slice(2).map((_, i) => i + 2);
    const mlp = (t: Tensor) => this.fc2.forward(F.relu(this.fc1.forward(t)));
    const avg = x.mean(spatialAxes, true);
    const mx = x.max(spatialAxes, true);
    const ca = F.sigmoid(mlp(avg).add(mlp(mx)));
    const xc = x.mul(ca);
    const sa = F.sigmoid(this.spatial.forward(torch.cat([xc.mean(1, true), xc.max(1, true)], 1)));
    this.lastChannel = ca;
    this.lastSpatial = sa;
    return xc.mul(sa);
  }
}
