/**
 * Residual-encoder U-Net in the form of nnU-Net's ResEnc presets (Isensee et
 * al. 2024, "nnU-Net Revisited"): a one-conv stem, then encoder stages of
 * stacked residual blocks, deeper towards the bottleneck (1, 3, 4, 6, 6, ...
 * blocks), and a light decoder of one conv-norm-LeakyReLU per stage. The
 * presets M / L / XL differ in patch and batch size for a GPU's memory, not
 * in this layout; medseg's planner sizes patch and batch for the CPU budget.
 *
 * The downsampling shortcut is a strided 1x1 conv + norm (ResidualBlock), where
 * nnU-Net's BasicBlockD average-pools before its 1x1 conv: the same shapes and
 * parameter count, one op fewer for ONNX export and channel pruning.
 */
import * as torch from '@medseg/torch';
import type { NetworkConfig } from '../plan/types.ts';
import { ConvNormAct, StackedConvs, type Dims } from './blocks-conv.ts';
import { ResidualBlock } from './blocks-residual.ts';
import { EncoderDecoderNet } from './encoder-decoder.ts';

const { nn } = torch;

/** nnU-Net's ResEnc blocks per encoder stage; stages past the list repeat its last entry. */
export const RESENC_BLOCKS_PER_STAGE: readonly number[] = [1, 3, 4, 6, 6, 6, 6];

/** Residual blocks of encoder stage s: config.extra.blocksPerStage (a list) or nnU-Net's. */
export function resencBlocks(config: NetworkConfig, s: number): number {
  const given = config.extra?.blocksPerStage;
  const list = Array.isArray(given) ? given.map(Number) : RESENC_BLOCKS_PER_STAGE;
  const n = list[Math.min(s, list.length - 1)]!;
  if (!Number.isInteger(n) || n < 1) throw new Error(`resenc-unet: blocksPerStage must list whole numbers >= 1, got ${JSON.stringify(given)}`);
  return n;
}

export class ResEncUNet extends EncoderDecoderNet {
  constructor(config: NetworkConfig) {
    const dims = config.dims as Dims;
    const decoderConvs = Number(config.extra?.decoderConvsPerStage ?? 1);
    const norm = config.norm;
    const dropout = config.dropout;
    super(config, {
      encoder: (s, inC, outC, kernel, stride) => {
        const units: torch.nn.UnaryModule[] = [];
        let c = inC;
        if (s === 0) {
          units.push(new ConvNormAct(dims, inC, outC, kernel, { norm, dropout }));
          c = outC;
        }
        const n = resencBlocks(config, s);
        for (let b = 0; b < n; b++) {
          units.push(new ResidualBlock(dims, b === 0 ? c : outC, outC, kernel, { stride: b === 0 ? stride : undefined, norm, dropout }));
        }
        return new nn.Sequential(...units);
      },
      decoder: (_s, inC, outC, kernel) => new StackedConvs(dims, inC, outC, kernel, { norm, n: decoderConvs, dropout }),
    });
  }
}
