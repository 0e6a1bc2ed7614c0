/**
 * U-Net in nnU-Net's PlainConvUNet form (Isensee et al. 2021): per stage two
 * conv-norm-LeakyReLU units, the first strided for downsampling with the
 * plan's per-axis strides; transposed-conv (or upsample+conv) decoder with
 * skip concatenation; a 1x1 head per decoder stage for deep supervision;
 * Kaiming-normal init (a = 0.01).
 */
import type { NetworkConfig } from '../plan/types.ts';
import { type Dims, StackedConvs } from './blocks-conv.ts';
import { EncoderDecoderNet } from './encoder-decoder.ts';

export class UNet extends EncoderDecoderNet {
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    const nConv = Number(config.extra?.convsPerStage ?? 2);
    super(config, {
      encoder: (_s, inC, outC, kernel, stride) => new StackedConvs(dims, inC, outC, kernel, { stride, norm: config.norm, n: nConv, dropout: config.dropout }),
      decoder: (_s, inC, outC, kernel) => new StackedConvs(dims, inC, outC, kernel, { norm: config.norm, n: nConv, dropout: config.dropout }),
    });
  }
}
