/**
 * One semi-supervised training step: the supervised loss on a labelled batch
 * plus a ramped weight times an unlabelled loss against the EMA teacher
 * (train/semi-teacher.ts), one backward pass, clipping, the optimizer step,
 * then the teacher's EMA update.
 *
 * The views: the loader's augmented unlabelled patch is the shared base;
 * each view adds its own Gaussian noise (std noiseStd, clipped at 2 std), so
 * the student's and the teacher's inputs differ while staying aligned voxel
 * for voxel (spatial augmentation would misalign the two predictions).
 * - mean-teacher (Tarvainen & Valpola; uncertainty-aware as Yu et al.'s
 *   UA-MT): the teacher runs `noisePasses` noisy passes; their mean softmax
 *   is the target, its entropy the uncertainty; the MSE counts voxels whose
 *   entropy is below entropyThreshold (ramped from 3/4 ln K to ln K).
 * - pseudo-label: the teacher predicts the noise-free base view; voxels
 *   whose top probability exceeds `confidence` take its argmax as a label
 *   for the student's cross-entropy, the rest are ignored.
 * The student's unlabelled loss uses its full-resolution output only.
 */
import * as torch from '@medseg/torch';
import type { Tensor, nn } from '@medseg/torch';
import type { SemiSupervisedSettings } from '../plan/types.ts';
import { deepSupervisionLoss } from './losses.ts';
import { maskedCrossEntropy, maskedSoftmaxMse, predictiveEntropy, pseudoLabels } from './semi-losses.ts';
import { emaDecayAt, entropyThreshold, unlabelledWeight } from './semi-schedules.ts';
import type { EmaTeacher } from './semi-teacher.ts';
import { forwardIn, type StepSettings, type Trainable } from './step.ts';

const { F, optim } = torch;

export const SEMI_DEFAULTS: Record<SemiSupervisedSettings['method'], SemiSupervisedSettings> = {
  'mean-teacher': { method: 'mean-teacher', weight: 0.1, rampUp: 0.4, emaDecay: 0.99, noiseStd: 0.1, noisePasses: 4, confidence: 0 },
  'pseudo-label': { method: 'pseudo-label', weight: 1, rampUp: 0.4, emaDecay: 0.99, noiseStd: 0.1, noisePasses: 1, confidence: 0.9 },
};

/** Where the run stands: the optimizer step (0-based, over the whole run) and the share of the run done (0..1). */
export interface StepPosition {
  step: number;
  progress: number;
}

export interface SemiStepStats {
  loss: number;
  supervised: number;
  unlabelled: number;
  weight: number;
  /** Share of unlabelled voxels that counted (below the entropy threshold, or confident). */
  counted: number;
  decay: number;
}

/** x + clamp(N(0, std^2), -2 std, 2 std). */
export function addClippedNoise(x: Tensor, std: number): Tensor {
  if (!(std > 0)) return x;
  return torch.tidy(() =>
    x.add(
      torch
        .randn(x.shape)
        .mul(std)
        .clamp(-2 * std, 2 * std),
    ),
  );
}

function finest(out: Tensor | Tensor[]): Tensor {
  return Array.isArray(out) ? out[0]! : out;
}

/** The unlabelled target and the 0/1 mask of counted voxels, from the teacher (no gradients). */
export function teacherTargets(
  teacher: Pick<Trainable, 'forward'>,
  unlabelled: Tensor,
  s: SemiSupervisedSettings,
  numClasses: number,
  progress: number,
  precision?: StepSettings['precision'],
): { probs: Tensor; mask: Tensor; labels?: Tensor } {
  return torch.noGrad(() =>
    torch.tidy(() => {
      if (s.method === 'pseudo-label') {
        const probs = F.softmax(finest(forwardIn(precision, teacher, unlabelled)), 1);
        const { labels, mask } = pseudoLabels(probs, s.confidence);
        return { probs, mask, labels };
      }
      const T = Math.max(1, s.noisePasses);
      let sum: Tensor | null = null;
      for (let i = 0; i < T; i++) {
        const p = F.softmax(finest(forwardIn(precision, teacher, addClippedNoise(unlabelled, s.noiseStd))), 1);
        sum = sum ? sum.add(p) : p;
      }
      const probs = sum!.div(T);
      const mask = predictiveEntropy(probs)
        .lt(entropyThreshold(numClasses, progress, s.rampUp))
        .to('float32');
      return { probs, mask };
    }),
  );
}

/** Runs one semi-supervised step on (image, label) and the unlabelled patches; returns what it measured. */
export function semiSupervisedStep(
  net: Trainable & nn.Module,
  opt: torch.optim.Optimizer,
  teacher: EmaTeacher<nn.Module & Trainable>,
  batch: { image: Tensor; label: Tensor; unlabelled: Tensor; skeletons?: Tensor },
  at: StepPosition,
  semi: SemiSupervisedSettings,
  s: StepSettings & { numClasses: number },
): SemiStepStats {
  const weight = unlabelledWeight(semi, at.progress);
  const stats = torch.tidy(() => {
    const supervised = deepSupervisionLoss(forwardIn(s.precision, net, batch.image), batch.label, s.loss, batch.skeletons);
    const t = teacherTargets(teacher.net, batch.unlabelled, semi, s.numClasses, at.progress, s.precision);
    const student = finest(forwardIn(s.precision, net, addClippedNoise(batch.unlabelled, semi.noiseStd)));
    const unlabelled = semi.method === 'pseudo-label' ? maskedCrossEntropy(student, t.labels!, t.mask) : maskedSoftmaxMse(student, t.probs, t.mask);
    const loss = supervised.add(unlabelled.mul(weight));
    opt.zeroGrad();
    loss.backward();
    if (s.gradClip > 0) optim.clipGradNorm(net.parameters(), s.gradClip);
    opt.step();
    return { loss: loss.item(), supervised: supervised.item(), unlabelled: unlabelled.item(), counted: t.mask.mean().item() };
  });
  const decay = emaDecayAt(at.step, semi.emaDecay);
  teacher.update(net, decay);
  return { ...stats, weight, decay };
}
