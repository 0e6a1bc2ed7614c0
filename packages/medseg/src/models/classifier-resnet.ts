/**
 * ResNet-18-style classifier (He et al.), adapted to small inputs as MedMNIST
 * does for 28 px: a 3x3 stride-1 stem without max pooling, four stages of two
 * residual blocks at widths w, 2w, 4w, 8w (w = 64 for ResNet-18), stride 2
 * into stages 2-4 (on each axis still longer than 1 voxel), batch norm,
 * global average pooling and a linear head. 2D or 3D from config.dims.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { ConvNormAct } from './blocks-conv.ts';
import { ResidualBlock } from './blocks-residual.ts';
import { initHe } from './blocks-network.ts';
import { checkClassifierInput, PooledHead, type ClassificationNetwork, type ClassifierConfig } from './classifier-config.ts';

const { nn } = torch;

export class ResNetClassifier extends nn.Module implements ClassificationNetwork {
  stem: ConvNormAct;
  stages: torch.nn.ModuleList<torch.nn.Sequential>;
  head: PooledHead;
  readonly camLayer: string;
  constructor(readonly config: ClassifierConfig) {
    super();
    const { dims, width: w } = config;
    const blocks = (config.extra?.blocks as number[] | undefined) ?? [2, 2, 2, 2];
    const k = new Array(dims).fill(3);
    this.stem = this.module('stem', new ConvNormAct(dims, config.inChannels, w, k, { norm: 'batch' }));
    this.stages = this.module('stages', new nn.ModuleList<torch.nn.Sequential>());
    let size = [...config.inputSize];
    let inC = w;
    blocks.forEach((n, s) => {
      const outC = w * 2 ** s;
      const stride = size.map((v) => (s > 0 && v > 1 ? 2 : 1));
      size = size.map((v, i) => Math.ceil(v / stride[i]!));
      const units: ResidualBlock[] = [];
      for (let b = 0; b < n; b++) units.push(new ResidualBlock(dims, b === 0 ? inC : outC, outC, k, { stride: b === 0 ? stride : undefined, norm: 'batch' }));
      this.stages.push(new nn.Sequential(...units));
      inC = outC;
    });
    this.head = this.module('head', new PooledHead(inC, config.numClasses, config.dropout));
    this.camLayer = `stages.${blocks.length - 1}`;
    initHe(this);
  }
  forward(x: Tensor): Tensor {
    checkClassifierInput(this.config, x);
    let h = this.stem.forward(x);
    for (const s of this.stages) h = s.forward(h);
    return this.head.forward(h);
  }
}
