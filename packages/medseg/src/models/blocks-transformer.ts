/** Transformer blocks: MLP, pre-norm ViT block, and a transformer stage over a CNN feature map. */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { conv, type Dims } from './blocks-conv.ts';

const { nn, F } = torch;
type Unary = torch.nn.UnaryModule;

/** Transformer MLP: Linear -> GELU -> dropout -> Linear -> dropout. */
export class Mlp extends nn.UnaryModule {
  fc1: torch.nn.Linear;
  fc2: torch.nn.Linear;
  drop: torch.nn.Dropout;
  constructor(dim: number, hidden: number, dropout = 0) {
    super();
    this.fc1 = this.module('fc1', new nn.Linear(dim, hidden));
    this.fc2 = this.module('fc2', new nn.Linear(hidden, dim));
    this.drop = this.module('drop', new nn.Dropout(dropout));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.fc2.forward(this.drop.forward(F.gelu(this.fc1.forward(x)))));
  }
}

/** Pre-norm ViT encoder block: x + MHA(LN(x)), then x + MLP(LN(x)). Tokens [N, L, E]. */
export class TransformerBlock extends nn.UnaryModule {
  norm1: torch.nn.LayerNorm;
  attn: torch.nn.MultiheadAttention;
  norm2: torch.nn.LayerNorm;
  mlp: Mlp;
  drop: torch.nn.Dropout;
  /** Head-averaged attention weights [N, L, L] of the last forward. */
  lastAttention: Tensor | null = null;
  constructor(dim: number, heads: number, o: { mlpRatio?: number; dropout?: number } = {}) {
    super();
    this.norm1 = this.module('norm1', new nn.LayerNorm(dim));
    this.attn = this.module('attn', multiheadAttention(dim, heads));
    this.norm2 = this.module('norm2', new nn.LayerNorm(dim));
    this.mlp = this.module('mlp', new Mlp(dim, Math.round(dim * (o.mlpRatio ?? 4)), o.dropout ?? 0));
    this.drop = this.module('drop', new nn.Dropout(o.dropout ?? 0));
  }
  forward(x: Tensor): Tensor {
    const h = this.norm1.forward(x);
    const { output, weights } = this.attn.forward(h, h, h);
    this.lastAttention = weights;
    const x1 = x.add(this.drop.forward(output));
    return x1.add(this.mlp.forward(this.norm2.forward(x1)));
  }
}

/**
 * nn.MultiheadAttention, built under noGrad: its constructor zeroes out_proj's
 * bias in place, which libtorch refuses on a leaf that requires grad.
 */
export function multiheadAttention(dim: number, heads: number, dropout = 0): torch.nn.MultiheadAttention {
  return torch.noGrad(() => new nn.MultiheadAttention(dim, heads, { dropout }));
}

/** Feature map [N, C, ...S] -> tokens [N, prod(S), C]. */
export const toTokens = (x: Tensor): Tensor => x.flatten(2).transpose(1, 2);
/** Tokens [N, L, C] -> feature map [N, C, ...spatial]. */
export const fromTokens = (t: Tensor, spatial: number[]): Tensor => t.transpose(1, 2).reshape([t.size(0), t.size(2), ...spatial]);

export interface TransformerStageOptions {
  depth: number;
  heads: number;
  /** Token width (default: the map's channels). */
  hidden?: number;
  dropout?: number;
  /**
   * 'learned': a learned position embedding over `grid` tokens (ViT/TransUNet),
   * resized linearly when the map has another size; 'conv': a depthwise conv
   * positional encoding (size-agnostic).
   */
  position: 'learned' | 'conv';
  grid?: number[];
  /** Add the stage's output to its input (keeps the CNN features; HybridNet). */
  residual?: boolean;
  /** Name prefix of the recorded attention maps, e.g. 'transformer' -> 'transformer.block0.attn'. */
  name: string;
}

/**
 * Transformer encoder blocks over the positions of a CNN feature map: 1x1
 * projection to tokens, position information, pre-norm blocks, final
 * LayerNorm, projection back to the map's channels.
 */
export class TransformerStage extends nn.UnaryModule {
  projIn: Unary;
  projOut: Unary;
  pos: Tensor | null = null;
  posConv: Unary | null = null;
  blocks: torch.nn.ModuleList<TransformerBlock>;
  norm: torch.nn.LayerNorm;
  constructor(
    readonly dims: Dims,
    channels: number,
    readonly o: TransformerStageOptions,
  ) {
    super();
    const hidden = o.hidden ?? channels;
    this.projIn = this.module('proj_in', conv(dims, channels, hidden, 1, { padding: 0 }));
    if (o.position === 'learned') {
      const grid = o.grid ?? new Array(dims).fill(4);
      this.pos = this.param('pos_embed', torch.zeros([1, hidden, ...grid]));
      nn.init.truncNormal_(this.pos, 0.02);
    } else {
      this.posConv = this.module('pos_conv', conv(dims, hidden, hidden, 3, { groups: hidden }));
    }
    this.blocks = this.module('blocks', new nn.ModuleList<TransformerBlock>());
    for (let i = 0; i < o.depth; i++) this.blocks.push(new TransformerBlock(hidden, o.heads, { dropout: o.dropout ?? 0 }));
    this.norm = this.module('norm', new nn.LayerNorm(hidden));
    this.projOut = this.module('proj_out', conv(dims, hidden, channels, 1, { padding: 0 }));
  }
  forward(x: Tensor): Tensor {
    const spatial = x.shape.slice(2);
    let h = this.projIn.forward(x);
    if (this.pos) {
      const same = this.pos.shape.slice(2).join(',') === spatial.join(',');
      h = h.add(same ? this.pos : F.interpolate(this.pos, { size: spatial, mode: 'linear' }));
    } else if (this.posConv) {
      h = h.add(this.posConv.forward(h));
    }
    let t = toTokens(h);
    for (const b of this.blocks) t = b.forward(t);
    const out = this.projOut.forward(fromTokens(this.norm.forward(t), spatial));
    return this.o.residual ? x.add(out) : out;
  }
  explain(): [string, Tensor | null][] {
    return this.blocks.items.map((b, i) => [`${this.o.name}.block${i}.attn`, b.lastAttention]);
  }
}

/** The largest head count <= preferred that divides dim. */
export function headsFor(dim: number, preferred: number): number {
  let h = Math.max(1, Math.min(preferred, dim));
  while (dim % h) h--;
  return h;
}
