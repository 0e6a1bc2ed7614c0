/**
 * The classifier registry: build a classifier by name, list the names, and
 * fill a config's defaults (widths and depths sized for small inputs such as
 * the 28 px MedMNIST images).
 */
import type { ClassificationNetwork, ClassifierConfig } from './classifier-config.ts';
import { HybridClassifier } from './classifier-hybrid.ts';
import { ResNetClassifier } from './classifier-resnet.ts';
import { ViTClassifier } from './classifier-vit.ts';

export type { ClassificationNetwork, ClassifierConfig } from './classifier-config.ts';

interface ClassifierEntry {
  build: (c: ClassifierConfig) => ClassificationNetwork;
  description: string;
  width: number;
  dropout: number;
}

const CLASSIFIERS: Record<string, ClassifierEntry> = {
  resnet18: {
    build: (c) => new ResNetClassifier(c),
    description: 'ResNet-18 layout (2-2-2-2 residual blocks, widths w..8w), 3x3 stride-1 stem for small inputs',
    width: 64,
    dropout: 0,
  },
  hybridnet: {
    build: (c) => new HybridClassifier(c),
    description: "HybridNet's encoder (conv stages + transformer blocks at the coarsest stage) with a pooled head",
    width: 32,
    dropout: 0.1,
  },
  vit: {
    build: (c) => new ViTClassifier(c),
    description: 'small Vision Transformer (patch 4, 6 blocks, mean-pooled tokens)',
    width: 96,
    dropout: 0.1,
  },
};

/** The registered classifier names with a line each. */
export function listClassifiers(): { name: string; description: string }[] {
  return Object.entries(CLASSIFIERS).map(([name, e]) => ({ name, description: e.description }));
}

/** A complete config for `architecture` on inputs of `inputSize` (the named defaults, overridden by `o`). */
export function classifierConfig(
  architecture: string,
  inputSize: number[],
  o: Partial<Omit<ClassifierConfig, 'architecture' | 'inputSize'>> = {},
): ClassifierConfig {
  const e = entry(architecture);
  const dims = inputSize.length;
  if (dims !== 2 && dims !== 3) throw new Error(`classifier input size must have 2 or 3 axes, got [${inputSize}]`);
  return { architecture, dims, inChannels: 1, numClasses: 2, width: e.width, dropout: e.dropout, inputSize, ...o };
}

function entry(name: string): ClassifierEntry {
  const e = CLASSIFIERS[name];
  if (!e) throw new Error(`unknown classifier '${name}': choose one of ${Object.keys(CLASSIFIERS).join(', ')}`);
  return e;
}

/** Builds the classifier the config names. */
export function createClassifier(config: ClassifierConfig): ClassificationNetwork {
  return entry(config.architecture).build(config);
}
