/**
 * Test helper: small model folders around untrained networks, written through
 * plan/model-folder.ts, for checking the prediction paths (formats, folds,
 * checkpoints, failures, progress), not accuracy. A fold's head can be set to
 * say one class everywhere, so which weights were used shows in the output.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as torch from '@medseg/torch';
import { completePlan, defaultAugmentation } from '../plan/complete.ts';
import type { Plan, PlanDraft } from '../plan/types.ts';
import { createNetwork } from '../models/registry.ts';
import { foldDir, foldFile, modelFile, type CheckpointChoice, type ModelCalibration } from '../plan/model-folder.ts';
import { saveWeights } from '../plan/model-weights.ts';

export type FixtureKind = 'mri3d' | 'ct3d' | 'gray2d';

function basePlan(kind: FixtureKind): Plan {
  return completePlan(baseDraft(kind));
}

function baseDraft(kind: FixtureKind): PlanDraft {
  const three = kind !== 'gray2d';
  const k3 = [3, 3, 3];
  return {
    schema: 'medseg.plan/2',
    dataset: `fixture-${kind}`,
    dims: three ? '3d_fullres' : '2d',
    channels: [kind === 'ct3d' ? 'CT' : 'MRI'],
    labels: { 0: 'background', 1: 'anterior', 2: 'posterior' },
    targetSpacing: kind === 'ct3d' ? [1, 0.5, 0.75] : [1, 1, 1],
    medianShape: kind === 'gray2d' ? [1, 24, 20] : [35, 51, 35],
    patchSize: kind === 'gray2d' ? [16, 16] : kind === 'ct3d' ? [2, 8, 8] : [16, 16, 16],
    batchSize: 1,
    network: {
      architecture: 'unet',
      dims: three ? 3 : 2,
      inChannels: 1,
      numClasses: 3,
      features: [4, 8],
      kernelSizes:
        kind === 'ct3d'
          ? [
              [1, 3, 3],
              [1, 3, 3],
            ]
          : three
            ? [k3, k3]
            : [
                [3, 3],
                [3, 3],
              ],
      strides:
        kind === 'ct3d'
          ? [
              [1, 1, 1],
              [1, 2, 2],
            ]
          : three
            ? [
                [1, 1, 1],
                [2, 2, 2],
              ]
            : [
                [1, 1],
                [2, 2],
              ],
      deepSupervision: false,
      norm: 'instance',
    },
    normalization: [
      kind === 'ct3d'
        ? { channel: 'CT', scheme: 'ct', useMaskForNorm: false, clip: [-100, 300], mean: 60, std: 80 }
        : { channel: 'MRI', scheme: 'zscore', useMaskForNorm: false },
    ],
    resampling: { image: 'bspline3', label: 'onehot-linear', separateZ: true, anisotropyThreshold: 3 },
    augmentation: defaultAugmentation(three ? 3 : 2, kind === 'gray2d' ? [16, 16] : [16, 16, 16]),
    oversampleForeground: 0.33,
    iterationsPerEpoch: 1,
    epochs: 1,
    budget: null,
    reference: { patchSize: [16, 16, 16], batchSize: 1, features: [4, 8] },
    inference: { mirror: false, stepFraction: 0.5 },
  };
}

export interface FixtureFold {
  /** Weights files to write; a class number makes the head say that class everywhere, 'random' keeps the seeded initial weights. */
  weights: Partial<Record<CheckpointChoice, number | 'random'>>;
}

/** Writes a model folder into dir; returns its plan. */
export function writeFixtureModel(dir: string, kind: FixtureKind, folds: FixtureFold[]): Plan {
  const plan = basePlan(kind);
  mkdirSync(dir, { recursive: true });
  writeFileSync(modelFile(dir, 'plan'), JSON.stringify(plan));
  folds.forEach((f, fold) => {
    const d = foldDir(dir, fold);
    mkdirSync(d, { recursive: true });
    for (const [choice, value] of Object.entries(f.weights) as [CheckpointChoice, number | 'random'][]) {
      torch.manualSeed(11 + fold);
      const net = createNetwork(plan.network);
      if (value !== 'random') {
        torch.noGrad(() => {
          const sd = net.stateDict();
          sd.get('seg_heads.0.weight')!.zero_();
          sd.get('seg_heads.0.bias')!.copy_(torch.tensor([0, 1, 2].map((k) => (k === value ? 10 : 0))));
        });
      }
      saveWeights(foldFile(d, choice), net.stateDict());
      net.dispose();
    }
  });
  return plan;
}

/** A calibration.json with a given temperature and review threshold (one failing validation case, caught). */
export function fixtureCalibration(o: { temperature: number; threshold: number; members: number; sources?: string[] }): ModelCalibration {
  return {
    temperature: o.temperature,
    voxels: 1,
    ece: { before: 0, after: 0 },
    nll: { before: 0, after: 0 },
    score: 'meanEntropy',
    members: o.members,
    ...(o.sources ? { sources: o.sources } : {}),
    triage: { threshold: o.threshold, failureDice: 0.8, capturedFailures: 1, flaggedFraction: 1, auroc: null, cases: 1, failures: 1 },
  };
}
