/**
 * The architecture registry: build a network from a NetworkConfig by name,
 * list what exists, and measure a network (parameters, MACs, the activations
 * of its last forward for explanation).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { NetworkConfig, SegmentationNetwork } from './config.ts';
import { countMacsOf } from './blocks-macs.ts';
import { UNet } from './unet.ts';
import { AttentionUNet } from './attention-unet.ts';
import { UNetPlusPlus } from './unetpp.ts';
import { ResUNet } from './resunet.ts';
import { R2UNet } from './r2unet.ts';
import { TransUNet } from './transunet.ts';
import { SwinUNETR } from './swin-unetr.ts';
import { HybridNet } from './hybridnet.ts';

export type ArchitectureType = 'CNN' | 'CNN+attention' | 'CNN+transformer' | 'transformer';

export interface ArchitectureInfo {
  name: string;
  type: ArchitectureType;
  description: string;
  build(config: NetworkConfig): SegmentationNetwork;
}

const ARCHITECTURES: ArchitectureInfo[] = [
  { name: 'unet', type: 'CNN', description: 'nnU-Net PlainConvUNet: two conv-norm-LeakyReLU per stage, strided conv down, transposed conv up, deep supervision', build: (c) => new UNet(c) },
  { name: 'attention-unet', type: 'CNN+attention', description: 'Attention U-Net (Oktay et al.): additive attention gates on the skips, gated by coarser decoder features', build: (c) => new AttentionUNet(c) },
  { name: 'unet++', type: 'CNN', description: 'UNet++ (Zhou et al.): nested dense skip pathways, deep supervision over the top-row nested heads', build: (c) => new UNetPlusPlus(c) },
  { name: 'resunet', type: 'CNN', description: 'Residual U-Net: residual blocks with strided 1x1 shortcuts in every stage', build: (c) => new ResUNet(c) },
  { name: 'r2unet', type: 'CNN', description: 'R2U-Net (Alom et al.): recurrent residual conv blocks (t = 2) in every stage', build: (c) => new R2UNet(c) },
  { name: 'transunet', type: 'CNN+transformer', description: 'TransUNet (Chen et al.): CNN encoder, ViT over bottleneck tokens with learned position embeddings, CNN decoder with skips', build: (c) => new TransUNet(c) },
  { name: 'swin-unetr', type: 'transformer', description: 'Swin-UNETR (Hatamizadeh et al.): Swin window / shifted-window attention encoder with patch merging, residual conv skips and decoder', build: (c) => new SwinUNETR(c) },
  {
    name: 'hybridnet',
    type: 'CNN+transformer',
    description: "The papers' hybrid: CNN stages, transformer blocks at coarse stages, CBAM + attention gates on skips, early or cross-attention multi-modal fusion, deep supervision, MC dropout",
    build: (c) => new HybridNet(c),
  },
];

const ALIASES: Record<string, string> = { unetpp: 'unet++', 'unet-plus-plus': 'unet++', swinunetr: 'swin-unetr', 'attention_unet': 'attention-unet', hybrid: 'hybridnet' };

export function listArchitectures(): Omit<ArchitectureInfo, 'build'>[] {
  return ARCHITECTURES.map(({ name, type, description }) => ({ name, type, description }));
}

export function architectureInfo(name: string): Omit<ArchitectureInfo, 'build'> {
  const key = ALIASES[name.toLowerCase()] ?? name.toLowerCase();
  const a = ARCHITECTURES.find((x) => x.name === key);
  if (!a) throw new Error(`unknown architecture '${name}': choose one of ${ARCHITECTURES.map((x) => x.name).join(', ')}`);
  return { name: a.name, type: a.type, description: a.description };
}

/** Builds the network the config names (throws a clear error for unknown names or inconsistent configs). */
export function createNetwork(config: NetworkConfig): SegmentationNetwork {
  const { name } = architectureInfo(config.architecture);
  return ARCHITECTURES.find((x) => x.name === name)!.build(config);
}

/** Trainable parameter count. */
export function countParameters(net: torch.nn.Module, trainableOnly = true): number {
  return net.numParameters(trainableOnly);
}

/**
 * Multiply-accumulates of one forward pass (batch 1, eval mode, no grad) at
 * `spatial` size, counted by forward hooks: see countMacsOf in blocks-macs.ts for
 * what is counted. Restores the training flag afterwards.
 */
export function countMACs(net: SegmentationNetwork, spatial: number[]): number {
  const wasTraining = net.training;
  net.eval();
  try {
    return countMacsOf(net, () =>
      torch.tidy(() => {
        torch.noGrad(() => net.forward(torch.zeros([1, net.config.inChannels, ...spatial])));
      }),
    );
  } finally {
    net.train(wasTraining);
  }
}

/** Named activations and attention maps of the net's last forward (empty if it records none). */
export function lastActivations(net: SegmentationNetwork): Map<string, Tensor> {
  return net.lastActivations?.() ?? new Map();
}
