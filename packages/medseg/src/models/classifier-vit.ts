/**
 * A small Vision Transformer (Dosovitskiy et al.): non-overlapping patches
 * embedded by a strided conv, a learned position embedding, pre-norm
 * transformer blocks, a final LayerNorm, and the mean of the patch tokens into
 * a linear head (global average pooling instead of a class token, so the last
 * tokens laid out on the patch grid ('grid') are a feature map Grad-CAM can
 * explain).
 *
 * extra: patch (default 4 voxels per axis), depth (default 6), heads
 * (default 4), mlpRatio (default 2).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { conv } from './blocks-conv.ts';
import { fromTokens, headsFor, toTokens, TransformerBlock } from './blocks-transformer.ts';
import { checkClassifierInput, PooledHead, type ClassificationNetwork, type ClassifierConfig } from './classifier-config.ts';

const { nn } = torch;

/** Tokens [N, L, C] -> the patch-grid feature map [N, C, ...grid]. */
class TokenGrid extends nn.UnaryModule {
  constructor(readonly grid: number[]) {
    super();
  }
  forward(t: Tensor): Tensor {
    return fromTokens(t, this.grid);
  }
}

export class ViTClassifier extends nn.Module implements ClassificationNetwork {
  patchEmbed: torch.nn.UnaryModule;
  pos: Tensor;
  blocks: torch.nn.ModuleList<TransformerBlock>;
  norm: torch.nn.LayerNorm;
  grid: TokenGrid;
  head: PooledHead;
  readonly camLayer = 'grid';
  constructor(readonly config: ClassifierConfig) {
    super();
    const { dims, width } = config;
    const e = config.extra ?? {};
    const patch = Number(e.patch ?? 4);
    if (config.inputSize.some((s) => s % patch)) throw new Error(`vit: input size [${config.inputSize}] must be a multiple of the patch size ${patch}`);
    const grid = config.inputSize.map((s) => s / patch);
    this.patchEmbed = this.module('patch_embed', conv(dims, config.inChannels, width, patch, { stride: patch, padding: 0 }));
    this.pos = this.param('pos_embed', torch.zeros([1, grid.reduce((a, b) => a * b, 1), width]));
    nn.init.truncNormal_(this.pos, 0.02);
    this.blocks = this.module('blocks', new nn.ModuleList<TransformerBlock>());
    const heads = headsFor(width, Number(e.heads ?? 4));
    for (let i = 0; i < Number(e.depth ?? 6); i++)
      this.blocks.push(new TransformerBlock(width, heads, { dropout: config.dropout, mlpRatio: Number(e.mlpRatio ?? 2) }));
    this.norm = this.module('norm', new nn.LayerNorm(width));
    this.grid = this.module('grid', new TokenGrid(grid));
    this.head = this.module('head', new PooledHead(width, config.numClasses, config.dropout));
  }
  forward(x: Tensor): Tensor {
    checkClassifierInput(this.config, x);
    const spatial = x.shape.slice(2);
    if (spatial.join(',') !== this.config.inputSize.join(',')) throw new Error(`vit: input must be [${this.config.inputSize}] voxels, got [${spatial}]`);
    let t = toTokens(this.patchEmbed.forward(x)).add(this.pos);
    for (const b of this.blocks) t = b.forward(t);
    return this.head.forward(this.grid.forward(this.norm.forward(t)));
  }
}
