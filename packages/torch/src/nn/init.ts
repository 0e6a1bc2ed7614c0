/** Weight initialisation, with PyTorch's formulas so models start alike. */
import { noGrad } from '../autograd.ts';
import { call, type Generator, type Tensor } from '../tensor.ts';

/** fan_in and fan_out as torch.nn.init computes them ([out, in, ...kernel]). */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) throw new Error(`fan in/out need at least 2 dims, got [${s.join(', ')}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1]! * receptive, fanOut: s[0]! * receptive };
}

export function uniform_(t: Tensor, low: number, high: number, gen?: Generator | null): Tensor {
  return noGrad(() => t.uniform_(low, high, gen));
}

export function normal_(t: Tensor, mean = 0, std = 1, gen?: Generator | null): Tensor {
  return noGrad(() => t.normal_(mean, std, gen));
}

export function zeros_(t: Tensor): Tensor {
  return noGrad(() => t.zero_());
}

export function ones_(t: Tensor): Tensor {
  return noGrad(() => t.fill_(1));
}

function gain(nonlinearity: 'relu' | 'leaky_relu' | 'linear', a: number): number {
  if (nonlinearity === 'relu') return Math.SQRT2;
  if (nonlinearity === 'leaky_relu') return Math.sqrt(2 / (1 + a * a));
  return 1;
}

/** He uniform; with the defaults (a = sqrt(5)) this is PyTorch's default conv/linear init. */
export function kaimingUniform_(
  t: Tensor,
  o: { a?: number; mode?: 'fanIn' | 'fanOut'; nonlinearity?: 'relu' | 'leaky_relu' | 'linear'; generator?: Generator | null } = {},
): Tensor {
  const a = o.a ?? Math.sqrt(5);
  const f = fans(t);
  const fan = o.mode === 'fanOut' ? f.fanOut : f.fanIn;
  const bound = Math.sqrt(3) * (gain(o.nonlinearity ?? 'leaky_relu', a) / Math.sqrt(fan));
  return uniform_(t, -bound, bound, o.generator);
}

/** He normal, as nnU-Net initialises its convolutions (a = 0.01, leaky ReLU). */
export function kaimingNormal_(
  t: Tensor,
  o: { a?: number; mode?: 'fanIn' | 'fanOut'; nonlinearity?: 'relu' | 'leaky_relu' | 'linear'; generator?: Generator | null } = {},
): Tensor {
  const a = o.a ?? 0;
  const f = fans(t);
  const fan = o.mode === 'fanOut' ? f.fanOut : f.fanIn;
  return normal_(t, 0, gain(o.nonlinearity ?? 'leaky_relu', a) / Math.sqrt(fan), o.generator);
}

export function xavierUniform_(t: Tensor, g = 1, gen?: Generator | null): Tensor {
  const f = fans(t);
  const bound = g * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform_(t, -bound, bound, gen);
}

/** Normal(mean, std) truncated to [a, b] by redrawing, as ViT initialisations use. */
export function truncNormal_(t: Tensor, std = 0.02, a = -2 * std, b = 2 * std, gen?: Generator | null): Tensor {
  return noGrad(() => {
    t.normal_(0, std, gen);
    for (let i = 0; i < 8; i++) {
      const outside = t.lt(a).logicalOr(t.gt(b));
      const n = outside.sum().item();
      if (n === 0) {
        outside.dispose();
        break;
      }
      const fresh = t.clone().normal_(0, std, gen);
      const mixed = fresh.maskedSelect(outside);
      call('aten::index_put_', [t, [outside], mixed, false]);
      outside.dispose();
      fresh.dispose();
      mixed.dispose();
    }
    return t.clamp_(a, b);
  });
}
