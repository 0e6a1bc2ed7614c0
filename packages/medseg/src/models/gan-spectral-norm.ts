/**
 * Spectral normalisation (Miyato et al. 2018) as a weight reparametrisation:
 * the layer keeps the raw weight (weight_orig) and two power-iteration
 * vectors (weight_u, weight_v), and convolves with weight_orig / sigma, where
 * sigma estimates the largest singular value of weight_orig reshaped to
 * [out, in * kernel]. In training mode every forward first runs the power
 * iteration (v = normalise(W^T u), u = normalise(W v), without gradient) and
 * stores u and v; in eval mode they are used as they are. The names, the
 * initial vectors (normalised standard normal) and the arithmetic are those
 * of torch.nn.utils.spectral_norm, so state dicts and numbers line up.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';

const { nn, F } = torch;

function normalise(x: Tensor, eps: number): Tensor {
  return x.div(x.norm().clamp(eps));
}

/**
 * weight_orig / sigma for a weight [out, ...]; when `update`, runs the power
 * iteration first and writes the new u and v into the given buffers.
 */
export function spectralNormalised(weight: Tensor, u: Tensor, v: Tensor, o: { update: boolean; iterations?: number; eps?: number }): Tensor {
  const eps = o.eps ?? 1e-12;
  const mat = weight.reshape([weight.shape[0]!, -1]);
  if (o.update) {
    torch.noGrad(() =>
      torch.tidy(() => {
        let uu = u;
        let vv = v;
        for (let i = 0; i < (o.iterations ?? 1); i++) {
          vv = normalise(mat.t().matmul(uu), eps);
          uu = normalise(mat.matmul(vv), eps);
        }
        u.copy_(uu);
        v.copy_(vv);
      }),
    );
  }
  // After an update, sigma uses copies of u and v (as PyTorch): a later forward's update must not change what this graph saved for backward.
  const [uu, vv] = o.update ? [u.clone(), v.clone()] : [u, v];
  const sigma = uu.mul(mat.matmul(vv)).sum();
  return weight.div(sigma);
}

/** A 2D or 3D convolution with a spectrally normalised weight (PyTorch's spectral_norm(nn.ConvNd(...)) state-dict names). */
export class SpectralNormConv extends nn.UnaryModule {
  readonly weight_orig: Tensor;
  readonly bias: Tensor | null;
  readonly weight_u: Tensor;
  readonly weight_v: Tensor;
  constructor(
    readonly dims: 2 | 3,
    inC: number,
    outC: number,
    readonly kernel: number,
    readonly o: { stride?: number; padding?: number; bias?: boolean; iterations?: number } = {},
  ) {
    super();
    // The plain layer's initialisation, then its weight moves under weight_orig.
    const plain = dims === 2 ? new nn.Conv2d(inC, outC, kernel, { bias: o.bias ?? true }) : new nn.Conv3d(inC, outC, kernel, { bias: o.bias ?? true });
    const w = plain.weight.detach().clone();
    const b = plain.bias ? plain.bias.detach().clone() : null;
    plain.dispose();
    this.weight_orig = this.param('weight_orig', w);
    this.bias = this.param('bias', b);
    const cols = w.numel / outC;
    this.weight_u = this.buffer(
      'weight_u',
      torch.noGrad(() => normalise(torch.randn([outC]), 1e-12)),
    );
    this.weight_v = this.buffer(
      'weight_v',
      torch.noGrad(() => normalise(torch.randn([cols]), 1e-12)),
    );
  }
  /** The weight the layer convolves with. */
  weight(): Tensor {
    return spectralNormalised(this.weight_orig, this.weight_u, this.weight_v, { update: this.training, iterations: this.o.iterations });
  }
  forward(x: Tensor): Tensor {
    return F.conv(x, this.weight(), this.bias, { stride: this.o.stride ?? 1, padding: this.o.padding ?? 0 });
  }
}
