/**
 * Attention U-Net (Oktay et al. 2018): the U-Net with an additive attention
 * gate on every skip, gated by the coarser decoder features, so the decoder
 * only receives the skip positions relevant to the target. The gate maps are
 * recorded as 'attention.gate<s>'.
 */
import type { NetworkConfig } from '../plan/types.ts';
import { AttentionGate } from './blocks-attention-gates.ts';
import { type Dims, StackedConvs } from './blocks-conv.ts';
import { EncoderDecoderNet } from './encoder-decoder.ts';

export class AttentionUNet extends EncoderDecoderNet {
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    super(config, {
      encoder: (_s, inC, outC, kernel, stride) => new StackedConvs(dims, inC, outC, kernel, { stride, norm: config.norm, dropout: config.dropout }),
      decoder: (_s, inC, outC, kernel) => new StackedConvs(dims, inC, outC, kernel, { norm: config.norm, dropout: config.dropout }),
      skipGate: (_s, skipC, gateC) => new AttentionGate(dims, skipC, gateC, Math.max(1, Math.floor(skipC / 2)), config.norm),
    });
  }
}
