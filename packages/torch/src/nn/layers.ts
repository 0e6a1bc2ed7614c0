/** Linear, dropout, activations, pooling, resampling, embedding and containers. */
import { empty } from '../creation.ts';
import * as F from '../functional.ts';
import type { Tensor } from '../tensor.ts';
import { fans, kaimingUniform_, normal_, uniform_ } from './init.ts';
import { Module, UnaryModule } from './module.ts';

export class Linear extends UnaryModule {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super();
    this.weight = this.param('weight', empty([outFeatures, inFeatures]));
    kaimingUniform_(this.weight);
    this.bias = this.param('bias', bias ? empty([outFeatures]) : null);
    if (this.bias) {
      const b = 1 / Math.sqrt(fans(this.weight).fanIn);
      uniform_(this.bias, -b, b);
    }
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

/** Elementwise dropout; `channelwise` drops whole feature maps (Dropout2d/3d). */
export class Dropout extends UnaryModule {
  /** Force dropout on in eval mode too: Monte-Carlo dropout for uncertainty. */
  mcDropout = false;
  constructor(
    readonly p = 0.5,
    readonly channelwise = false,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    const active = this.training || this.mcDropout;
    return this.channelwise ? F.channelDropout(x, this.p, active) : F.dropout(x, this.p, active);
  }
}

export class Identity extends UnaryModule {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class ReLU extends UnaryModule {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class LeakyReLU extends UnaryModule {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }
}

export class GELU extends UnaryModule {
  forward(x: Tensor): Tensor {
    return F.gelu(x);
  }
}

export class Sigmoid extends UnaryModule {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

export class Softmax extends UnaryModule {
  constructor(readonly dim = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.softmax(x, this.dim);
  }
}

export class MaxPool extends UnaryModule {
  constructor(
    readonly kernel: number | number[],
    readonly stride?: number | number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.maxPool(x, this.kernel, { stride: this.stride ?? this.kernel });
  }
}

export class AvgPool extends UnaryModule {
  constructor(
    readonly kernel: number | number[],
    readonly stride?: number | number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.avgPool(x, this.kernel, { stride: this.stride ?? this.kernel });
  }
}

export class Upsample extends UnaryModule {
  constructor(readonly options: { size?: number[]; scaleFactor?: number | number[]; mode?: F.InterpolateMode; alignCorners?: boolean }) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.interpolate(x, this.options);
  }
}

export class Embedding extends UnaryModule {
  readonly weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
  ) {
    super();
    this.weight = this.param('weight', empty([numEmbeddings, dim]));
    normal_(this.weight);
  }
  forward(indices: Tensor): Tensor {
    return F.embedding(indices, this.weight);
  }
}

/** Runs its children in order; they are named "0", "1", ... as in PyTorch. */
export class Sequential extends UnaryModule {
  readonly layers: UnaryModule[];
  constructor(...layers: UnaryModule[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.module(String(i), m));
  }
  forward(x: Tensor): Tensor {
    // Intermediates are left to the caller's tidy() scope: a forward hook may
    // hold on to them (Grad-CAM), so freeing them here would be wrong.
    let h = x;
    for (const m of this.layers) h = m.forward(h);
    return h;
  }
}

/** A list of modules registered under "0", "1", ...; iterate it yourself. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }
  push(m: M): this {
    this.module(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new RangeError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
