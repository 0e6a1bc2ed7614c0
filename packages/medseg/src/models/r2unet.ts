/**
 * R2U-Net (Alom et al. 2018): recurrent residual blocks (two recurrent conv
 * units, each unrolled t = 2 times, around a residual 1x1 projection) in
 * every encoder and decoder stage. config.extra.t sets the recurrence.
 */
import type { NetworkConfig } from '../plan/types.ts';
import type { Dims } from './blocks-conv.ts';
import { R2Block } from './blocks-residual.ts';
import { EncoderDecoderNet } from './encoder-decoder.ts';

export class R2UNet extends EncoderDecoderNet {
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    const t = Number(config.extra?.t ?? 2);
    super(config, {
      encoder: (_s, inC, outC, kernel, stride) => new R2Block(dims, inC, outC, kernel, { stride, norm: config.norm, t }),
      decoder: (_s, inC, outC, kernel) => new R2Block(dims, inC, outC, kernel, { norm: config.norm, t }),
    });
  }
}
