/** Convolution layers, 1D/2D/3D, initialised as PyTorch does. */
import { empty } from '../creation.ts';
import * as F from '../functional.ts';
import type { Tensor } from '../tensor.ts';
import { fans, kaimingUniform_, uniform_ } from './init.ts';
import { UnaryModule } from './module.ts';

type IntOrList = number | number[];
const expandN = (v: IntOrList, n: number): number[] => (Array.isArray(v) ? v : new Array(n).fill(v));

export interface ConvLayerOptions {
  stride?: IntOrList;
  padding?: IntOrList;
  dilation?: IntOrList;
  groups?: number;
  bias?: boolean;
}

export class ConvNd extends UnaryModule {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly dims: 1 | 2 | 3,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: IntOrList,
    readonly options: ConvLayerOptions = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`conv: channels ${inChannels}->${outChannels} not divisible by groups ${groups}`);
    this.weight = this.param('weight', empty([outChannels, inChannels / groups, ...expandN(kernelSize, dims)]));
    kaimingUniform_(this.weight);
    this.bias = options.bias === false ? this.param('bias', null) : this.param('bias', empty([outChannels]));
    if (this.bias) {
      const b = 1 / Math.sqrt(fans(this.weight).fanIn);
      uniform_(this.bias, -b, b);
    }
  }
  forward(x: Tensor): Tensor {
    const o = this.options;
    return F.conv(x, this.weight, this.bias, { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups: o.groups ?? 1 });
  }
}

export class Conv1d extends ConvNd {
  constructor(inC: number, outC: number, k: IntOrList, o?: ConvLayerOptions) {
    super(1, inC, outC, k, o);
  }
}
export class Conv2d extends ConvNd {
  constructor(inC: number, outC: number, k: IntOrList, o?: ConvLayerOptions) {
    super(2, inC, outC, k, o);
  }
}
export class Conv3d extends ConvNd {
  constructor(inC: number, outC: number, k: IntOrList, o?: ConvLayerOptions) {
    super(3, inC, outC, k, o);
  }
}

export class ConvTransposeNd extends UnaryModule {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly dims: 1 | 2 | 3,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: IntOrList,
    readonly options: ConvLayerOptions & { outputPadding?: IntOrList } = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    // Transposed conv weights are [in, out / groups, ...kernel]; PyTorch takes
    // the fan from dim 1 for them, which kaimingUniform_'s fans() also does.
    this.weight = this.param('weight', empty([inChannels, outChannels / groups, ...expandN(kernelSize, dims)]));
    kaimingUniform_(this.weight);
    this.bias = options.bias === false ? this.param('bias', null) : this.param('bias', empty([outChannels]));
    if (this.bias) {
      const b = 1 / Math.sqrt(fans(this.weight).fanIn);
      uniform_(this.bias, -b, b);
    }
  }
  forward(x: Tensor): Tensor {
    const o = this.options;
    return F.convTranspose(x, this.weight, this.bias, {
      stride: o.stride ?? 1,
      padding: o.padding ?? 0,
      dilation: o.dilation ?? 1,
      groups: o.groups ?? 1,
      outputPadding: o.outputPadding ?? 0,
    });
  }
}

export class ConvTranspose1d extends ConvTransposeNd {
  constructor(inC: number, outC: number, k: IntOrList, o?: ConvLayerOptions & { outputPadding?: IntOrList }) {
    super(1, inC, outC, k, o);
  }
}
export class ConvTranspose2d extends ConvTransposeNd {
  constructor(inC: number, outC: number, k: IntOrList, o?: ConvLayerOptions & { outputPadding?: IntOrList }) {
    super(2, inC, outC, k, o);
  }
}
export class ConvTranspose3d extends ConvTransposeNd {
  constructor(inC: number, outC: number, k: IntOrList, o?: ConvLayerOptions & { outputPadding?: IntOrList }) {
    super(3, inC, outC, k, o);
  }
}
