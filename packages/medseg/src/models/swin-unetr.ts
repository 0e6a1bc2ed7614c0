/**
 * Swin-UNETR (Hatamizadeh et al. 2022), a faithful small version: the input is
 * embedded by a strided conv (patch size = strides[1]); each following stage
 * runs two Swin blocks (window attention, then shifted-window attention, with
 * relative position bias) and hands over to the next by patch merging (along
 * the axes that stride). Every resolution's hidden state (and the raw input
 * for stage 0) goes through a residual conv block to become a skip; the
 * decoder upsamples, concatenates and applies residual blocks, as UNETR does.
 *
 * extra: window (per axis, default 4), heads (preferred heads per stage,
 * default 4, reduced to divide the width), swinDepth (blocks per stage,
 * default 2; pairs of regular + shifted).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { conv, type Dims } from './blocks-conv.ts';
import { checkInput, initHe, Upsampler } from './blocks-network.ts';
import { ResidualBlock } from './blocks-residual.ts';
import { PatchMerging, SwinBlock } from './blocks-swin.ts';
import { headsFor } from './blocks-transformer.ts';
import { SegNetBase } from './encoder-decoder.ts';

const { nn } = torch;
type Unary = torch.nn.UnaryModule;

/** Channels-first <-> channels-last. */
const toLast = (x: Tensor): Tensor => x.permute([0, ...x.shape.slice(2).map((_, i) => i + 2), 1]);
const toFirst = (x: Tensor): Tensor => x.permute([0, x.ndim - 1, ...x.shape.slice(1, -1).map((_, i) => i + 1)]);

class SwinStage extends nn.Module {
  blocks: torch.nn.ModuleList<SwinBlock>;
  constructor(dim: number, heads: number, window: number[], depth: number, dropout: number) {
    super();
    this.blocks = this.module('blocks', new nn.ModuleList<SwinBlock>());
    for (let i = 0; i < depth; i++) this.blocks.push(new SwinBlock(dim, heads, window, i % 2 === 1, dropout));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const b of this.blocks) h = b.forward(h);
    return h;
  }
}

export class SwinUNETR extends SegNetBase {
  patchEmbed: Unary;
  embedNorm: torch.nn.LayerNorm;
  stages: torch.nn.ModuleList<SwinStage>;
  merges: torch.nn.ModuleList<PatchMerging>;
  skipBlocks: torch.nn.ModuleList<ResidualBlock>;
  ups: torch.nn.ModuleList<Upsampler>;
  decoder: torch.nn.ModuleList<ResidualBlock>;
  heads: torch.nn.ModuleList<Unary>;

  constructor(config: NetworkConfig) {
    super(config);
    const c = config;
    const dims = c.dims as Dims;
    const n = c.features.length;
    const f = c.features;
    const e = c.extra ?? {};
    const w = e.window;
    const window = Array.isArray(w) ? (w as number[]) : new Array(dims).fill(Number(w ?? 4));
    const depth = Number(e.swinDepth ?? 2);
    if (c.strides[0]!.some((s) => s !== 1)) throw new Error('swin-unetr: the first stage must have stride 1 (it is the full-resolution conv skip)');
    // Patch embedding: the raw input -> tokens at stage 1's grid.
    this.patchEmbed = this.module('patch_embed', conv(dims, c.inChannels, f[1]!, c.strides[1]!, { stride: c.strides[1]!, padding: 0 }));
    this.embedNorm = this.module('embed_norm', new nn.LayerNorm(f[1]!));
    this.stages = this.module('stages', new nn.ModuleList<SwinStage>());
    this.merges = this.module('merges', new nn.ModuleList<PatchMerging>());
    for (let s = 1; s < n; s++) {
      this.stages.push(new SwinStage(f[s]!, headsFor(f[s]!, Number(e.heads ?? 4)), window, depth, c.dropout ?? 0));
      if (s < n - 1) this.merges.push(new PatchMerging(f[s]!, f[s + 1]!, c.strides[s + 1]!));
    }
    this.skipBlocks = this.module('skip_blocks', new nn.ModuleList<ResidualBlock>());
    for (let s = 0; s < n; s++) this.skipBlocks.push(new ResidualBlock(dims, s === 0 ? c.inChannels : f[s]!, f[s]!, c.kernelSizes[s]!, { norm: c.norm }));
    this.ups = this.module('ups', new nn.ModuleList<Upsampler>());
    this.decoder = this.module('decoder', new nn.ModuleList<ResidualBlock>());
    this.heads = this.module('seg_heads', new nn.ModuleList<Unary>());
    for (let s = n - 2; s >= 0; s--) {
      this.ups.push(new Upsampler(dims, f[s + 1]!, f[s]!, c.strides[s + 1]!, c.upsample ?? 'transpose'));
      this.decoder.push(new ResidualBlock(dims, 2 * f[s]!, f[s]!, c.kernelSizes[s]!, { norm: c.norm, dropout: c.dropout }));
      if (s === 0 || c.deepSupervision) this.heads.push(conv(dims, f[s]!, c.numClasses, 1, { padding: 0 }));
    }
    initHe(this);
  }

  forward(x: Tensor): Tensor | Tensor[] {
    const c = this.config;
    checkInput(c, x);
    this.beginForward();
    const n = c.features.length;
    const skips: Tensor[] = [this.skipBlocks.at(0).forward(x)];
    this.record('encoder.stage0', skips[0]);
    let t = this.embedNorm.forward(toLast(this.patchEmbed.forward(x)));
    for (let s = 1; s < n; s++) {
      const stage = this.stages.at(s - 1);
      t = stage.forward(t);
      stage.blocks.items.forEach((b, i) => this.record(`swin.stage${s}.block${i}.attn`, b.attn.lastAttention));
      const hidden = toFirst(t);
      this.record(`encoder.stage${s}`, hidden);
      skips.push(this.skipBlocks.at(s).forward(hidden.contiguous()));
      if (s < n - 1) t = this.merges.at(s - 1).forward(t);
    }
    let h = skips[n - 1]!;
    const outs: Tensor[] = [];
    let head = 0;
    for (let s = n - 2, k = 0; s >= 0; s--, k++) {
      const skip = skips[s]!;
      const up = this.ups.at(k).forward(h, skip.shape.slice(2));
      h = this.decoder.at(k).forward(torch.cat([up, skip], 1));
      this.record(`decoder.stage${s}`, h);
      if (s === 0 || c.deepSupervision) {
        if (s === 0 || this.training) outs.unshift(this.heads.at(head).forward(h));
        head++;
      }
    }
    this.record('logits', outs[0]);
    return this.finish(outs);
  }
}
