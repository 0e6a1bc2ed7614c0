/**
 * HybridNet's encoder as a classifier: HybridNet's encoder stages (two
 * conv-norm-act units, the first strided) with transformer blocks over the
 * coarsest stage's positions, then a pooled linear head. Module names match
 * the segmentation HybridNet's encoder ('encoder.s', 'encoder_post.0'), so a
 * segmentation model's encoder weights load into it by name.
 *
 * extra: stages (default 4: widths w, 2w, 4w, 8w), depth (transformer blocks,
 * default 2), heads (default 4).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { StackedConvs } from './blocks-conv.ts';
import { headsFor, TransformerStage } from './blocks-transformer.ts';
import { initHe } from './blocks-network.ts';
import { checkClassifierInput, PooledHead, type ClassificationNetwork, type ClassifierConfig } from './classifier-config.ts';

const { nn } = torch;

export class HybridClassifier extends nn.Module implements ClassificationNetwork {
  encoder: torch.nn.ModuleList<StackedConvs>;
  post: torch.nn.ModuleList<TransformerStage>;
  head: PooledHead;
  readonly camLayer = 'encoder_post.0';
  constructor(readonly config: ClassifierConfig) {
    super();
    const { dims, width: w } = config;
    const e = config.extra ?? {};
    const stages = Number(e.stages ?? 4);
    const k = new Array(dims).fill(3);
    this.encoder = this.module('encoder', new nn.ModuleList<StackedConvs>());
    let size = [...config.inputSize];
    let inC = config.inChannels;
    for (let s = 0; s < stages; s++) {
      const outC = w * 2 ** s;
      const stride = size.map((v) => (s > 0 && v > 1 ? 2 : 1));
      size = size.map((v, i) => Math.ceil(v / stride[i]!));
      this.encoder.push(new StackedConvs(dims, inC, outC, k, { stride, norm: 'instance', dropout: 0 }));
      inC = outC;
    }
    this.post = this.module('encoder_post', new nn.ModuleList<TransformerStage>());
    this.post.push(
      new TransformerStage(dims, inC, {
        depth: Number(e.depth ?? 2),
        heads: headsFor(inC, Number(e.heads ?? 4)),
        dropout: config.dropout,
        position: 'conv',
        residual: true,
        name: 'transformer',
      }),
    );
    this.head = this.module('head', new PooledHead(inC, config.numClasses, config.dropout));
    initHe(this);
  }
  forward(x: Tensor): Tensor {
    checkClassifierInput(this.config, x);
    let h = x;
    for (const s of this.encoder) h = s.forward(h);
    return this.head.forward(this.post.at(0).forward(h));
  }
}
