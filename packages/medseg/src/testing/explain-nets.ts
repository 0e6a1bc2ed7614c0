/**
 * Test helper: tiny networks for the explanation methods, small enough that
 * an independent PyTorch computation (or a hand computation) gives the
 * expected map. Their weights go to Python as plain arrays.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from '../models/config.ts';
import type { NetworkConfig } from '../plan/types.ts';
import { Rng } from '../util/random.ts';

const { nn, F } = torch;

/**
 * features: conv k3, stride 2, padding 1 (inC -> width), then ReLU, nearest
 * upsampling x2, head: conv 1x1 (width -> classes). Logits [N, K, ...S] for S even.
 */
export class TinyCamNet extends nn.Module implements SegmentationNetwork {
  readonly config: NetworkConfig;
  features: torch.nn.ConvNd;
  head: torch.nn.ConvNd;
  constructor(
    readonly dims: 2 | 3,
    inC: number,
    width: number,
    classes: number,
  ) {
    super();
    const k = new Array(dims).fill(3);
    this.features = this.module('features', new nn.ConvNd(dims, inC, width, k, { stride: 2, padding: 1 }));
    this.head = this.module('head', new nn.ConvNd(dims, width, classes, new Array(dims).fill(1)));
    this.config = {
      architecture: 'tiny-cam',
      dims,
      inChannels: inC,
      numClasses: classes,
      features: [width, width],
      kernelSizes: [k, k],
      strides: [new Array(dims).fill(1), new Array(dims).fill(2)],
      deepSupervision: false,
      norm: 'instance',
    };
  }
  forward(x: Tensor): Tensor {
    const h = F.relu(this.features.forward(x));
    return this.head.forward(F.interpolate(h, { scaleFactor: 2, mode: 'nearest' }));
  }
  /** Weights as nested plain arrays for Python. */
  weightsJson(): Record<string, { shape: number[]; data: number[] }> {
    const out: Record<string, { shape: number[]; data: number[] }> = {};
    for (const [k, t] of this.stateDict()) out[k] = { shape: t.shape, data: Array.from(t.toFloat32Array()) };
    return out;
  }
}

/** The same forward in PyTorch (a Python source fragment defining net(x, W) with W the weightsJson dict as tensors). */
export const TINY_CAM_NET_PY = `
import torch, torch.nn.functional as F
def tensors(W):
    return {k: torch.tensor(v['data'], dtype=torch.float64).reshape(v['shape']) for k, v in W.items()}
def net(x, W, capture=None):
    conv = F.conv2d if x.dim() == 4 else F.conv3d
    a = conv(x, W['features.weight'], W['features.bias'], stride=2, padding=1)
    if capture is not None: capture.append(a)
    h = F.relu(a)
    return conv(F.interpolate(h, scale_factor=2, mode='nearest'), W['head.weight'], W['head.bias'])
`;

/**
 * Images [N, 1, S, S] of noise with one bright disc each, and the disc as
 * class 1 [N, S, S] (int64): a task a TinyCamNet learns in a few dozen steps,
 * so explanations of a trained net can be compared with a random one.
 */
export function discImages(n: number, size: number, seed: number): { images: Tensor; labels: Tensor } {
  const rng = new Rng(seed);
  const img = new Float32Array(n * size * size);
  const lab = new BigInt64Array(n * size * size);
  for (let k = 0; k < n; k++) {
    const cy = rng.uniform(size * 0.25, size * 0.75);
    const cx = rng.uniform(size * 0.25, size * 0.75);
    const r = rng.uniform(size * 0.12, size * 0.2);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const i = (k * size + y) * size + x;
        const inside = (y - cy) ** 2 + (x - cx) ** 2 < r * r;
        img[i] = rng.normal() * 0.5 + (inside ? 2 : 0);
        lab[i] = inside ? 1n : 0n;
      }
  }
  return { images: torch.tensor(img, [n, 1, size, size]), labels: torch.tensor(lab, [n, size, size]) };
}

/** A TinyCamNet (2D, 1 channel, 2 classes) trained on discImages with Adam. */
export function trainedDiscNet(steps = 60): TinyCamNet {
  torch.manualSeed(21);
  const net = new TinyCamNet(2, 1, 6, 2);
  const opt = new torch.optim.Adam(net.parameters(), { lr: 0.05 });
  for (let s = 0; s < steps; s++) {
    torch.tidy(() => {
      const { images, labels } = discImages(8, 32, 100 + s);
      opt.zeroGrad();
      torch.F.crossEntropy(net.forward(images), labels).backward();
      opt.step();
    });
  }
  return net.eval();
}
