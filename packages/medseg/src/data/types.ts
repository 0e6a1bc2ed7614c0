/**
 * A case after preprocessing (crop to nonzero, resample to the plan's spacing,
 * normalise), as the trainer, the sampler and the predictor consume it.
 * Arrays are C-order [C, Z, Y, X] (2D: Z = 1), the same memory layout as
 * io/volume.ts's planar x-fastest data.
 */
import type { Volume } from '../io/volume.ts';

export interface PreprocessedCase {
  id: string;
  /** Normalised image, float32, length C * Z * Y * X. */
  data: Float32Array;
  /** Label map (uint8), length Z * Y * X, or null for unlabelled cases. */
  label: Uint8Array | null;
  channels: number;
  /** Spatial shape after preprocessing, [Z, Y, X]. */
  shape: [number, number, number];
  /** Voxel spacing after preprocessing, [z, y, x] mm. */
  spacing: [number, number, number];
  /** What is needed to map a prediction back onto the original image. */
  properties: CaseProperties;
}

export interface CaseProperties {
  /** Geometry of the original image (data omitted). */
  original: Omit<Volume, 'data'>;
  /** Original spatial shape [Z, Y, X]. */
  originalShape: [number, number, number];
  /** Original spacing [z, y, x]. */
  originalSpacing: [number, number, number];
  /** Crop to nonzero: [start, end) per axis [z, y, x] in original voxels. */
  cropBox: [[number, number], [number, number], [number, number]];
  /** Shape after cropping, before resampling, [Z, Y, X]. */
  croppedShape: [number, number, number];
  /** Foreground voxel coordinates per class (sampled), [z, y, x] in preprocessed space, for oversampling. */
  classLocations?: Record<number, [number, number, number][]>;
}
