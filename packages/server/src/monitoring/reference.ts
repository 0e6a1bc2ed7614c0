/**
 * What a model's inputs are compared with: its training data's fingerprint
 * (fingerprint.json: spacing and shape of each training case, intensity
 * statistics of the labelled foreground per channel), the modality its
 * normalisation implies, and its validation cases' uncertainty (the triage
 * threshold calibration.json fitted on them and the fraction of validation
 * cases it flagged).
 */
import { existsSync } from 'node:fs';
import { loadFingerprint } from '@medseg/medseg/data/fingerprint';
import type { IntensityStats } from '@medseg/medseg/data/fingerprint';
import { modelFile, readCalibration } from '@medseg/medseg/plan/model-folder';
import { loadPlan } from '@medseg/medseg/plan/store';

type Range = { min: number; max: number };

export interface MonitoringReference {
  /** Training cases the fingerprint holds (0: the model folder has no fingerprint). */
  trainingCases: number;
  /** 2: every training case was one slice (z spacing and extent are not compared). */
  dims: 2 | 3;
  /** Per axis [z, y, x], over the training cases. */
  spacing: [Range, Range, Range] | null;
  /** Physical size (shape x spacing, mm) per axis [z, y, x], over the training cases. */
  extentMm: [Range, Range, Range] | null;
  /** Per channel, of the training foreground. */
  intensity: IntensityStats[] | null;
  /** The modality the model's normalisation implies (CT for CT normalisation, MR for MR channel names), or null. */
  modality: string | null;
  /** The validation cases' uncertainty: the triage threshold and the fraction of them it flagged; null without a calibration. */
  validation: { threshold: number; flaggedFraction: number; cases: number } | null;
}

const MR_CHANNEL = /^(mr|mri|t1|t1w|t1c|t1gd|t2|t2w|flair|adc|dwi|pd|swi)\b/i;

function range(values: number[]): Range {
  return { min: Math.min(...values), max: Math.max(...values) };
}

/** The reference of a model folder; parts its folder lacks are null. */
export function monitoringReference(modelDir: string): MonitoringReference {
  const plan = loadPlan(modelFile(modelDir, 'plan'));
  const fpPath = modelFile(modelDir, 'fingerprint');
  const fp = existsSync(fpPath) ? loadFingerprint(fpPath) : null;
  const cases = fp?.cases ?? [];
  const axes = [0, 1, 2] as const;
  const calibration = readCalibration(modelDir);
  const triage = calibration?.triage;
  const scheme = plan.normalization[0]?.scheme;
  const modality = scheme === 'ct' ? 'CT' : plan.channels.every((c) => MR_CHANNEL.test(c)) ? 'MR' : null;
  return {
    trainingCases: cases.length,
    dims: fp?.dims ?? (plan.dims === '2d' ? 2 : 3),
    spacing: cases.length ? (axes.map((a) => range(cases.map((c) => c.spacing[a]))) as MonitoringReference['spacing']) : null,
    extentMm: cases.length ? (axes.map((a) => range(cases.map((c) => c.shape[a] * c.spacing[a]))) as MonitoringReference['extentMm']) : null,
    intensity: fp && fp.intensity.every((s) => Number.isFinite(s.median)) ? fp.intensity : null,
    modality,
    validation: triage ? { threshold: triage.threshold, flaggedFraction: triage.flaggedFraction, cases: triage.cases } : null,
  };
}
