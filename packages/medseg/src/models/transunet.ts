/**
 * TransUNet (Chen et al. 2021): a CNN encoder whose coarsest feature map is cut
 * into patch tokens (one token per position, TransUNet's hybrid "patch size 1
 * on CNN features"), given learned position embeddings and passed through a
 * ViT (pre-norm blocks); the tokens are reshaped back and a CNN decoder with
 * skips upsamples them.
 *
 * extra: depth (ViT blocks, default 2), heads (default 4, reduced to divide the
 * width), hidden (token width, default the bottleneck's channels), inputSize
 * (patch size; sets the position-embedding grid = inputSize / total stride,
 * otherwise a 4^dims grid resized to the map, as ViT does at other sizes).
 */
import type { NetworkConfig } from '../plan/types.ts';
import { type Dims, StackedConvs } from './blocks-conv.ts';
import { cumulativeStrides } from './blocks-network.ts';
import { headsFor, TransformerStage } from './blocks-transformer.ts';
import { EncoderDecoderNet } from './encoder-decoder.ts';

export class TransUNet extends EncoderDecoderNet {
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    const n = config.features.length;
    const e = config.extra ?? {};
    const hidden = Number(e.hidden ?? config.features[n - 1]);
    const inputSize = e.inputSize as number[] | undefined;
    const total = cumulativeStrides(config.strides).at(-1)!;
    const grid = inputSize ? inputSize.map((s, i) => Math.max(1, Math.floor(s / total[i]!))) : undefined;
    super(config, {
      encoder: (_s, inC, outC, kernel, stride) => new StackedConvs(dims, inC, outC, kernel, { stride, norm: config.norm, dropout: config.dropout }),
      decoder: (_s, inC, outC, kernel) => new StackedConvs(dims, inC, outC, kernel, { norm: config.norm, dropout: config.dropout }),
      afterEncoder: (s, channels) =>
        s === n - 1
          ? new TransformerStage(dims, channels, {
              depth: Number(e.depth ?? 2),
              heads: headsFor(hidden, Number(e.heads ?? 4)),
              hidden,
              dropout: config.dropout ?? 0,
              position: 'learned',
              grid,
              residual: false,
              name: 'transformer',
            })
          : null,
    });
  }
}
