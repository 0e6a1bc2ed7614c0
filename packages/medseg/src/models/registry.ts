/**
 * The architecture registry: build a network from a NetworkConfig by name,
 * list what exists, and measure a network (parameters, MACs, the activations
 * of its last forward for explanation).
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from './config.ts';
import type { NetworkConfig } from '../plan/types.ts';
import { countMacsOf } from './blocks-macs.ts';
import { architectureInfo } from './catalog.ts';
import { UNet } from './unet.ts';
import { AttentionUNet } from './attention-unet.ts';
import { UNetPlusPlus } from './unetpp.ts';
import { ResUNet } from './resunet.ts';
import { ResEncUNet } from './resenc-unet.ts';
import { R2UNet } from './r2unet.ts';
import { TransUNet } from './transunet.ts';
import { SwinUNETR } from './swin-unetr.ts';
import { HybridNet } from './hybridnet.ts';

export { architectureInfo, listArchitectures, type ArchitectureEntry, type ArchitectureType } from './catalog.ts';

const BUILDERS: Record<string, (config: NetworkConfig) => SegmentationNetwork> = {
  unet: (c) => new UNet(c),
  'attention-unet': (c) => new AttentionUNet(c),
  'unet++': (c) => new UNetPlusPlus(c),
  resunet: (c) => new ResUNet(c),
  'resenc-unet': (c) => new ResEncUNet(c),
  r2unet: (c) => new R2UNet(c),
  transunet: (c) => new TransUNet(c),
  'swin-unetr': (c) => new SwinUNETR(c),
  hybridnet: (c) => new HybridNet(c),
};

/** Builds the network the config names (throws a clear error for unknown names or inconsistent configs). */
export function createNetwork(config: NetworkConfig): SegmentationNetwork {
  const { name } = architectureInfo(config.architecture);
  return BUILDERS[name]!(config);
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
