/**
 * HybridNet, medseg's hybrid CNN-transformer model: a CNN backbone for local
 * features, transformer layers for global context at the coarse stages,
 * attention modules on the skips (CBAM channel + spatial attention, then an
 * additive attention gate driven by the coarser decoder features),
 * multi-modal fusion, deep supervision, and dropout that can stay on at
 * inference (Monte-Carlo dropout: setMcDropout(true)).
 *
 * Multi-modal input (config.extra.modalities = M; inChannels is split evenly
 * into M modalities):
 * - fusion 'early' (default): the modalities are stacked as input channels.
 * - fusion 'cross-attention': each modality has its own first-stage encoder;
 *   at every voxel a query (the mean of the modality features) attends over
 *   the M modality tokens (keys/values, each with a learned modality
 *   embedding) with nn.MultiheadAttention, so the network learns per voxel how
 *   much each modality contributes. The weights are recorded as
 *   'fusion.modalityWeights' [N, M, ...spatial] for explanation.
 *
 * extra: transformerStages (how many coarsest stages get transformer blocks,
 * default 1), depth (blocks per such stage, default 2), heads (default 4),
 * cbam (default true), gates (default true), modalities, fusion.
 * Dropout: config.dropout (default 0.1) in the convs and transformer blocks.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { AttentionGate, CBAM } from './blocks-attention-gates.ts';
import { type Dims, StackedConvs } from './blocks-conv.ts';
import { headsFor, multiheadAttention, TransformerStage } from './blocks-transformer.ts';
import { EncoderDecoderNet, type Explainable } from './encoder-decoder.ts';

const { nn } = torch;

export type FusionMode = 'early' | 'cross-attention';

/** Per-modality first-stage encoders fused voxel-wise by cross-attention over modalities. */
export class CrossModalFusion extends nn.UnaryModule implements Explainable {
  encoders: torch.nn.ModuleList<StackedConvs>;
  attn: torch.nn.MultiheadAttention;
  modalityEmbed: Tensor;
  norm: torch.nn.LayerNorm;
  lastWeights: Tensor | null = null;
  constructor(
    dims: Dims,
    readonly modalities: number,
    readonly channelsPerModality: number,
    readonly width: number,
    kernel: number[],
    normKind: NetworkConfig['norm'],
    heads: number,
    dropout: number,
  ) {
    super();
    this.encoders = this.module('encoders', new nn.ModuleList<StackedConvs>());
    for (let m = 0; m < modalities; m++) this.encoders.push(new StackedConvs(dims, channelsPerModality, width, kernel, { norm: normKind, dropout }));
    this.modalityEmbed = this.param('modality_embed', torch.zeros([modalities, width]));
    nn.init.truncNormal_(this.modalityEmbed, 0.02);
    this.norm = this.module('norm', new nn.LayerNorm(width));
    this.attn = this.module('attn', multiheadAttention(width, headsFor(width, heads)));
  }
  forward(x: Tensor): Tensor {
    const [n, , ...spatial] = x.shape;
    const v = spatial.reduce((a, b) => a * b, 1);
    const c = this.width;
    // feats[m]: [N, C, ...S] -> tokens [N * V, M, C]
    const feats = this.encoders.items.map((enc, m) => enc.forward(x.narrow(1, m * this.channelsPerModality, this.channelsPerModality)));
    const stacked = torch.stack(feats, 1); // [N, M, C, ...S]
    const tokens = stacked
      .flatten(3)
      .permute([0, 3, 1, 2])
      .reshape([n! * v, this.modalities, c]);
    const kv = this.norm.forward(tokens.add(this.modalityEmbed));
    const q = kv.mean(1, true); // [N*V, 1, C]
    const { output, weights } = this.attn.forward(q, kv, kv); // [N*V, 1, C], [N*V, 1, M]
    // Residual on the mean modality feature keeps a path for every modality from the start.
    const fused = output.add(tokens.mean(1, true));
    this.lastWeights = weights.reshape([n!, ...spatial, this.modalities]).permute([0, spatial.length + 1, ...spatial.map((_, i) => i + 1)]);
    return fused
      .reshape([n!, v, c])
      .transpose(1, 2)
      .reshape([n!, c, ...spatial]);
  }
  explain(): [string, Tensor | null][] {
    return [['fusion.modalityWeights', this.lastWeights]];
  }
}

/** CBAM on a skip, naming its maps for explanation. */
class SkipCBAM extends CBAM implements Explainable {
  explain(stage: number): [string, Tensor | null][] {
    return [
      [`cbam.skip${stage}.spatial`, this.lastSpatial],
      [`cbam.skip${stage}.channel`, this.lastChannel],
    ];
  }
}

export class HybridNet extends EncoderDecoderNet {
  readonly fusion: FusionMode;
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    const e = config.extra ?? {};
    const n = config.features.length;
    const dropout = config.dropout ?? 0.1;
    const fusion = (e.fusion ?? 'early') as FusionMode;
    if (fusion !== 'early' && fusion !== 'cross-attention')
      throw new Error(`hybridnet: extra.fusion must be 'early' or 'cross-attention', got '${String(fusion)}'`);
    const modalities = Number(e.modalities ?? (fusion === 'cross-attention' ? config.inChannels : 1));
    if (!Number.isInteger(modalities) || modalities < 1 || config.inChannels % modalities) {
      throw new Error(`hybridnet: extra.modalities (${String(e.modalities)}) must divide inChannels (${config.inChannels})`);
    }
    const tStages = Number(e.transformerStages ?? 1);
    const heads = Number(e.heads ?? 4);
    const useCbam = e.cbam !== false;
    const useGates = e.gates !== false;
    const f0 = config.features[0]!;
    const stem =
      fusion === 'cross-attention'
        ? new CrossModalFusion(dims, modalities, config.inChannels / modalities, f0, config.kernelSizes[0]!, config.norm, heads, dropout)
        : null;
    super(config, {
      stem,
      stemChannels: stem ? f0 : config.inChannels,
      encoder: (_s, inC, outC, kernel, stride) => new StackedConvs(dims, inC, outC, kernel, { stride, norm: config.norm, dropout }),
      decoder: (_s, inC, outC, kernel) => new StackedConvs(dims, inC, outC, kernel, { norm: config.norm, dropout }),
      afterEncoder: (s, channels) =>
        s >= n - tStages && s > 0
          ? new TransformerStage(dims, channels, {
              depth: Number(e.depth ?? 2),
              heads: headsFor(channels, heads),
              dropout,
              position: 'conv',
              residual: true,
              name: tStages > 1 ? `transformer.stage${s}` : 'transformer',
            })
          : null,
      skipRefine: (_s, channels) => (useCbam ? new SkipCBAM(dims, channels, Math.min(4, channels)) : null),
      skipGate: (_s, skipC, gateC) => (useGates ? new AttentionGate(dims, skipC, gateC, Math.max(1, Math.floor(skipC / 2)), config.norm) : null),
    });
    this.fusion = fusion;
  }
}
