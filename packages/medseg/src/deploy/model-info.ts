/**
 * What an exported model says about itself: the 'medseg' metadata entry of
 * its ONNX file. Types and format tags only, so a web page can read a model
 * without the exporter's libtorch imports.
 */
import type { Plan } from '../plan/types.ts';

/** Format tag of the metadata and of the ensemble manifest. */
export const ONNX_METADATA_FORMAT = 'medseg.onnx/1';
export const ONNX_MANIFEST_FORMAT = 'medseg.onnx-ensemble/1';

/** What the 'medseg' metadata entry holds: everything a runtime needs to preprocess, run and read the model. */
export interface OnnxModelInfo {
  format: typeof ONNX_METADATA_FORMAT;
  medsegVersion: string;
  dataset: string;
  architecture: string;
  network: Plan['network'];
  /** '2d' or '3d_fullres'; spatial axes are [z, y, x] (3D) or [y, x] (2D), as the plan's. */
  dims: Plan['dims'];
  channels: string[];
  labels: Plan['labels'];
  targetSpacing: Plan['targetSpacing'];
  normalization: Plan['normalization'];
  patchSize: number[];
  /** Sliding-window and TTA settings: mirrorAxes index the spatial axes (0 = first spatial axis of the input). */
  inference: Plan['inference'] & { mirrorAxes: number[]; transposeAxes: number[] };
  /** Classes whose largest connected component alone is kept after argmax. */
  postprocessing: { keepLargestComponent: number[] };
  input: { name: string; layout: string; shape: (number | string | null)[] };
  /** Raw logits (no softmax), one channel per label. */
  output: { name: string; shape: (number | string | null)[] };
  dynamicAxes: string[];
  /** Axes fixed at the plan's patch size, with why (an architecture whose graph changes with the size). */
  fixedAxes: { name: string; size: number; reason: string }[];
  fold: number;
  weights: string;
  /**
   * The model folder's calibration.json, as prediction uses it: logits are
   * divided by the temperature before the softmax, and a case whose triage
   * score (infer/case-score.ts, from `members` passes of `sources`) reaches
   * the threshold is flagged for review. Absent for a model without one.
   */
  calibration?: OnnxCalibration;
}

export interface OnnxCalibration {
  temperature: number;
  score: 'meanEntropy';
  members: number;
  sources?: string[];
  triage: { threshold: number; failureDice: number; auroc: number | null } | null;
}
