/**
 * What the plan tells an architecture, and what every architecture gives back.
 * Shared by the planner (data/plan.ts), the model zoo (models/*) and the
 * trainer/predictor (train/, infer/).
 */
import type { Tensor, nn } from '@medseg/torch';

export interface NetworkConfig {
  /** Registry name: 'unet', 'attention-unet', 'unet++', 'resunet', 'r2unet', 'transunet', 'swin-unetr', 'hybridnet'. */
  architecture: string;
  dims: 2 | 3;
  inChannels: number;
  numClasses: number;
  /** Feature channels per resolution stage, highest resolution first (nnU-Net: 32, 64, 128, ... capped). */
  features: number[];
  /** Convolution kernel per stage, per spatial axis in [z, y, x] (or [y, x]) order. */
  kernelSizes: number[][];
  /** Downsampling stride into each stage ([1,1,1] for the first), per axis. */
  strides: number[][];
  deepSupervision: boolean;
  norm: 'instance' | 'batch' | 'group';
  /** Decoder upsampling: transposed conv (default) or upsample + conv (browser/WebGPU export). */
  upsample?: 'transpose' | 'interpolate';
  /** Dropout probability (HybridNet keeps it usable at inference for MC uncertainty). */
  dropout?: number;
  /** Architecture-specific extras (transformer depth, heads, window size, modalities ...). */
  extra?: Record<string, unknown>;
}

/**
 * A segmentation network. forward returns logits [N, numClasses, ...spatial];
 * with deep supervision in training mode, a list of logits from the highest
 * resolution down (the first has the input's size).
 */
export interface SegmentationNetwork extends nn.Module {
  readonly config: NetworkConfig;
  forward(x: Tensor): Tensor | Tensor[];
  /** Named intermediate activations and attention maps of the last forward (explainability). */
  lastActivations?(): Map<string, Tensor>;
}
