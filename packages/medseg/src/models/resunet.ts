/**
 * Residual U-Net (ResUNet; Zhang et al. 2018, the residual stages of He et
 * al.): every encoder and decoder stage is a residual block; the encoder's
 * block downsamples with its strided first conv and a strided 1x1 shortcut.
 */
import type { NetworkConfig } from '../plan/types.ts';
import type { Dims } from './blocks-conv.ts';
import { ResidualBlock } from './blocks-residual.ts';
import { EncoderDecoderNet } from './encoder-decoder.ts';

export class ResUNet extends EncoderDecoderNet {
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    super(config, {
      encoder: (_s, inC, outC, kernel, stride) => new ResidualBlock(dims, inC, outC, kernel, { stride, norm: config.norm, dropout: config.dropout }),
      decoder: (_s, inC, outC, kernel) => new ResidualBlock(dims, inC, outC, kernel, { norm: config.norm, dropout: config.dropout }),
    });
  }
}
