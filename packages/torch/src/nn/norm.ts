/** Normalisation layers with PyTorch's parameter and buffer names. */
import { ones, zeros } from '../creation.ts';
import * as F from '../functional.ts';
import { noGrad } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { UnaryModule } from './module.ts';

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** BatchNorm for any rank ([N, C, ...]); BatchNorm1d/2d/3d of PyTorch are this one. */
export class BatchNorm extends UnaryModule {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  constructor(
    readonly numFeatures: number,
    readonly options: BatchNormOptions = {},
  ) {
    super();
    const affine = options.affine ?? true;
    this.weight = this.param('weight', affine ? ones([numFeatures]) : null);
    this.bias = this.param('bias', affine ? zeros([numFeatures]) : null);
    const track = options.trackRunningStats ?? true;
    this.runningMean = this.buffer('running_mean', track ? zeros([numFeatures]) : null);
    this.runningVar = this.buffer('running_var', track ? ones([numFeatures]) : null);
    this.numBatchesTracked = this.buffer('num_batches_tracked', track ? zeros([], { dtype: 'int64' }) : null);
  }
  forward(x: Tensor): Tensor {
    const useBatchStats = this.training || !this.runningMean;
    if (this.training && this.numBatchesTracked) noGrad(() => this.numBatchesTracked!.add_(1));
    return F.batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, useBatchStats, {
      eps: this.options.eps ?? 1e-5,
      momentum: this.options.momentum ?? 0.1,
    });
  }
}

export class InstanceNorm extends UnaryModule {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly numFeatures: number,
    readonly options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    const affine = options.affine ?? false;
    this.weight = this.param('weight', affine ? ones([numFeatures]) : null);
    this.bias = this.param('bias', affine ? zeros([numFeatures]) : null);
  }
  forward(x: Tensor): Tensor {
    return F.instanceNorm(x, this.weight, this.bias, { eps: this.options.eps ?? 1e-5 });
  }
}

export class GroupNorm extends UnaryModule {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (numChannels % numGroups) throw new Error(`GroupNorm: ${numChannels} channels not divisible into ${numGroups} groups`);
    const affine = options.affine ?? true;
    this.weight = this.param('weight', affine ? ones([numChannels]) : null);
    this.bias = this.param('bias', affine ? zeros([numChannels]) : null);
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.numGroups, this.weight, this.bias, this.options.eps ?? 1e-5);
  }
}

export class LayerNorm extends UnaryModule {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly shape: number[];
  constructor(
    normalizedShape: number | number[],
    readonly options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    this.shape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    const affine = options.affine ?? true;
    this.weight = this.param('weight', affine ? ones(this.shape) : null);
    this.bias = this.param('bias', affine ? zeros(this.shape) : null);
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.shape, this.weight, this.bias, this.options.eps ?? 1e-5);
  }
}
