/**
 * Image classifiers built from the zoo's encoders: what a classifier is told
 * (ClassifierConfig), what it gives back (logits [N, numClasses]), and the
 * pooled head they share. Each classifier names the layer whose feature map
 * Grad-CAM explains (camLayer).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { Dims } from './blocks-conv.ts';

const { nn, F } = torch;

export interface ClassifierConfig {
  /** Registry name: 'resnet18', 'hybridnet', 'vit' (models/classifier-registry.ts). */
  architecture: string;
  dims: Dims;
  inChannels: number;
  numClasses: number;
  /** Input size per spatial axis ([y, x] or [z, y, x]); fixed for the ViT's position embedding. */
  inputSize: number[];
  /** Channels of the first stage (CNNs) or the token width (ViT). */
  width: number;
  /** Dropout before the linear head (and in transformer blocks). */
  dropout: number;
  /** Architecture-specific extras (depth, heads, patch size, transformer stages ...). */
  extra?: Record<string, unknown>;
}

/** A classifier: forward returns logits [N, numClasses]. */
export interface ClassificationNetwork extends torch.nn.Module {
  readonly config: ClassifierConfig;
  /** The dotted module name whose output is the last spatial feature map [N, C, ...s] (Grad-CAM's default layer). */
  readonly camLayer: string;
  forward(x: Tensor): Tensor;
}

/** Throws a clear error unless x is [N, inChannels, ...inputSize-like] for this classifier. */
export function checkClassifierInput(c: ClassifierConfig, x: Tensor): void {
  if (x.ndim !== c.dims + 2 || x.size(1) !== c.inChannels) {
    throw new Error(`${c.architecture}: input must be [N, ${c.inChannels}, ${c.dims === 2 ? 'H, W' : 'D, H, W'}], got [${x.shape}]`);
  }
}

/** Global average pooling over the spatial axes, dropout, and a linear layer to the class logits. */
export class PooledHead extends nn.UnaryModule {
  drop: torch.nn.Dropout;
  fc: torch.nn.Linear;
  constructor(channels: number, numClasses: number, dropout: number) {
    super();
    this.drop = this.module('drop', new nn.Dropout(dropout));
    this.fc = this.module('fc', new nn.Linear(channels, numClasses));
  }
  forward(x: Tensor): Tensor {
    const pooled = F.adaptiveAvgPool(x, new Array(x.ndim - 2).fill(1)).flatten(1);
    return this.fc.forward(this.drop.forward(pooled));
  }
}
