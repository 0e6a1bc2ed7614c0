/**
 * Multi-head attention with PyTorch's parameter layout (in_proj_weight [3E, E],
 * in_proj_bias, out_proj), batch-first: inputs are [N, L, E].
 */
import { empty, zeros } from '../creation.ts';
import * as F from '../functional.ts';
import { tidy } from '../scope.ts';
import type { Tensor } from '../tensor.ts';
import { xavierUniform_, zeros_ } from './init.ts';
import { Linear } from './layers.ts';
import { Module } from './module.ts';

export class MultiheadAttention extends Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor | null;
  readonly outProj: Linear;
  readonly headDim: number;
  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    readonly options: { dropout?: number; bias?: boolean } = {},
  ) {
    super();
    if (embedDim % numHeads) throw new Error(`MultiheadAttention: embedDim ${embedDim} not divisible by ${numHeads} heads`);
    this.headDim = embedDim / numHeads;
    this.inProjWeight = this.param('in_proj_weight', empty([3 * embedDim, embedDim]));
    xavierUniform_(this.inProjWeight);
    this.inProjBias = this.param('in_proj_bias', options.bias === false ? null : zeros([3 * embedDim]));
    this.outProj = this.module('out_proj', new Linear(embedDim, embedDim, options.bias !== false));
    if (this.outProj.bias) zeros_(this.outProj.bias);
  }

  /**
   * query [N, L, E], key/value [N, S, E]. Returns the output [N, L, E] and the
   * attention weights averaged over heads [N, L, S] (for attention maps).
   */
  forward(query: Tensor, key: Tensor = query, value: Tensor = key, o: { attnMask?: Tensor | null } = {}): { output: Tensor; weights: Tensor } {
    return tidy(() => {
      const [N, L, E] = query.shape as [number, number, number];
      const S = key.size(1);
      const H = this.numHeads;
      const D = this.headDim;
      const w = this.inProjWeight.chunk(3, 0);
      const b = this.inProjBias ? this.inProjBias.chunk(3, 0) : [null, null, null];
      const heads = (x: Tensor, len: number) => x.reshape([N, len, H, D]).transpose(1, 2);
      const q = heads(F.linear(query, w[0]!, b[0]), L);
      const k = heads(F.linear(key, w[1]!, b[1]), S);
      const v = heads(F.linear(value, w[2]!, b[2]), S);
      const { output, weights } = F.scaledDotProductAttention(q, k, v, {
        mask: o.attnMask ?? null,
        dropoutP: this.options.dropout ?? 0,
        training: this.training,
      });
      const merged = output.transpose(1, 2).reshape([N, L, E]);
      return { output: this.outProj.forward(merged), weights: weights.mean(1) };
    });
  }
}
