/**
 * The plan: everything preprocessing, training, prediction and export read
 * about a dataset's model, as one editable JSON file (like nnU-Net's plans
 * JSON). `PlanDraft` is what the planner writes; `Plan` is a completed plan
 * (plan/complete.ts), which every consumer reads.
 */

export type Zyx = [number, number, number];

/** The schema a saved plan carries; older schemas are migrated on load (plan/migrate.ts). */
export const PLAN_SCHEMA = 'medseg.plan/2';

/** What the plan tells an architecture (models/*). */
export interface NetworkConfig {
  /** Registry name: 'unet', 'attention-unet', 'unet++', 'resunet', 'resenc-unet', 'r2unet', 'transunet', 'swin-unetr', 'hybridnet'. */
  architecture: string;
  dims: 2 | 3;
  inChannels: number;
  numClasses: number;
  /** Feature channels per resolution stage, highest resolution first (nnU-Net: 32, 64, 128, ... capped). */
  features: number[];
  /** Convolution kernel per stage, per spatial axis in [z, y, x] (or [y, x]) order. */
  kernelSizes: number[][];
  /** Downsampling stride into each stage ([1,1,1] for the first), per axis. */
  strides: number[][];
  deepSupervision: boolean;
  norm: 'instance' | 'batch' | 'group';
  /** Decoder upsampling: transposed conv (default) or upsample + conv (browser/WebGPU export). */
  upsample?: 'transpose' | 'interpolate';
  /** Dropout probability (HybridNet keeps it usable at inference for MC uncertainty). */
  dropout?: number;
  /** Architecture-specific extras (transformer depth, heads, window size, modalities ...). */
  extra?: Record<string, unknown>;
}

export type NormScheme = 'ct' | 'zscore' | 'rescale01' | 'rgb01' | 'none';

export interface ChannelNormalization {
  channel: string;
  scheme: NormScheme;
  /** z-score inside the nonzero mask only (outside set to 0). */
  useMaskForNorm: boolean;
  /** CT: foreground percentiles 0.5 / 99.5 and mean / std. */
  clip?: [number, number];
  mean?: number;
  std?: number;
}

export interface AugmentationParams {
  rotation: { p: number; maxDegrees: number[] };
  scaling: { p: number; range: [number, number] };
  elastic: { p: number; alpha: [number, number]; sigma: [number, number] };
  mirror: { p: number; axes: number[] };
  noise: { p: number; variance: [number, number] };
  blur: { p: number; sigma: [number, number] };
  brightness: { p: number; range: [number, number] };
  contrast: { p: number; range: [number, number] };
  lowResolution: { p: number; zoom: [number, number]; ignoreAxes: number[] };
  gamma: { p: number; range: [number, number]; pInvert: number };
  /** Anisotropic patch: spatial transforms in-plane only (nnU-Net's dummy 2D). */
  dummy2d: boolean;
  /**
   * 2D: swap the plane's two axes (exact, no interpolation). With mirroring
   * the patch takes any of the 8 orientations of the square, as EM and
   * microscopy pipelines augment; needs square pixels.
   */
  transpose: { p: number };
}

/** One real training step timed while planning (see BudgetInfo.calibration). */
export interface StepCalibration {
  patchSize: number[];
  batchSize: number;
  baseFeatures: number;
  predictedSeconds: number;
  measuredSeconds: number;
}

export interface BudgetInfo {
  minutes: number;
  cores: number;
  memoryGiB: number;
  /** Predicted (or measured) seconds per training step. */
  stepSeconds: number;
  /** Expected seconds of the trainer's validation pass after each epoch (data/planner.ts validationSeconds); the epochs are sized to keep it a small share. */
  validationSeconds?: number;
  /** Throughput model: seconds = overhead + 3 * forwardMACs / macsPerSecond. */
  macsPerSecond: number;
  overheadSeconds: number;
  baseFeatures: number;
  targetIterations: number;
  note: string;
  /** Real training steps timed while choosing: the MAC model was scaled by measured / predicted. */
  calibration?: StepCalibration[];
  /** How times were measured and when a timed step overrode the throughput model's choice. */
  timingRule?: string;
}

/**
 * Arithmetic of the network's forward pass: 'fp32', or 'bf16' mixed precision
 * (libtorch's CPU autocast: convolutions and matmuls in bfloat16, fp32 master
 * weights, optimizer and loss in fp32; see @medseg/torch autocast).
 */
export type Precision = 'fp32' | 'bf16';

/** Why a plan trains and predicts in its precision (plan/precision.ts decides, pipeline/precision-choice.ts measures). */
export interface PrecisionChoice {
  reason: string;
  /** The CPU's bf16 instructions when planned (avx512_bf16, amx_bf16); [] = none (bf16 emulated, slow). */
  cpuBf16?: string[];
  /** One timed training step of the planned network and patch, per precision. */
  fp32StepSeconds?: number;
  bf16StepSeconds?: number;
  /** Inference's own decision: one timed network pass (no gradients, the sliding window's batch of mirrored tiles) per precision. */
  inference?: { reason: string; fp32PassSeconds?: number; bf16PassSeconds?: number };
}

/** What the trainer takes from the plan; editable like everything else in it. */
export interface TrainingSettings {
  optimizer: 'sgd' | 'adamw';
  lr: number;
  weightDecay: number;
  /** SGD momentum (Nesterov); kept for AdamW plans so a switch to SGD has it. */
  momentum: number;
  schedule: 'poly' | 'cosine' | 'constant';
  warmupEpochs: number;
  /** skeletonRecall: weight of the skeleton-recall term for thin structures (2D plans; absent or 0: none; train/losses.ts). */
  loss: { name: 'dice_ce' | 'dice_focal' | 'ce' | 'dice'; batchDice: boolean; includeBackground?: boolean; skeletonRecall?: number };
  /** Max gradient norm (nnU-Net: 12); 0 disables. */
  gradClip: number;
  /** Save the latest checkpoint every this many epochs (and always at the end). */
  checkpointEvery: number;
  /** Stop after this many epochs without a better validation Dice; 0 = never. */
  earlyStoppingPatience: number;
  /** Train until this much wall time has passed (stopping mid-epoch, then validating), the LR decay following the clock; 0 = no limit: the plan's epochs. */
  timeBudgetMinutes: number;
  /** Forward pass arithmetic of training (and of validation during training); default fp32. */
  precision: Precision;
  /**
   * Validate after each epoch on at most this many of the fold's validation
   * cases, spread evenly over them (absent: all). The planner sets it when a
   * pass over all of them would take a large share of a short budget; the
   * final validation with the best weights always uses every case.
   */
  epochValidationCases?: number;
  /**
   * Weight averaging (train/weight-average.ts): from this share of the run
   * (the time budget, else the planned epochs) on, each validated epoch's
   * weights join a running mean, saved as the fold's averaged weights and
   * validated beside the best epoch's. With `lr` (stochastic weight
   * averaging, as torch.optim.swa_utils.SWALR): the learning rate anneals by
   * cosine from its peak to `lr` times the peak at `from` and holds there, so
   * the averaged epochs explore around the minimum instead of settling into
   * it; without, the schedule runs to its end as usual. Absent: none.
   */
  weightAveraging?: { from: number; lr?: number };
}

/**
 * Semi-supervised training (train/semi-step.ts): unlabelled patches join
 * every step, scored against an exponential-moving-average teacher of the
 * network. mean-teacher: MSE between the student's softmax and the mean
 * softmax of `noisePasses` noisy teacher passes, counted only where the
 * teacher's predictive entropy is below a ramped threshold (UA-MT).
 * pseudo-label: cross-entropy against the teacher's argmax where its top
 * probability exceeds `confidence`, the rest ignored.
 */
export interface SemiSupervisedSettings {
  method: 'mean-teacher' | 'pseudo-label';
  /** Weight of the unlabelled loss after the ramp-up (the loss is supervised + weight * unlabelled). */
  weight: number;
  /** Share of the run (iterations, or the time budget) over which the weight ramps up as exp(-5 (1 - t)^2). */
  rampUp: number;
  /** The teacher's EMA decay: min(1 - 1 / (step + 1), emaDecay). */
  emaDecay: number;
  /** Gaussian input noise (std, clipped at 2 std) that makes the views differ. */
  noiseStd: number;
  /** mean-teacher: teacher passes whose mean softmax is the target and whose entropy gives the mask. */
  noisePasses: number;
  /** pseudo-label: the teacher's top probability a voxel needs to count. */
  confidence: number;
}

/** What a semi-supervised run used, kept in the model folder's plan and the model card. */
export interface SemiSupervisedRecord extends SemiSupervisedSettings {
  unlabelledCases: number;
  /** Where the unlabelled cases came from: the dataset's imagesTr without labels, or a folder. */
  unlabelledSource: string;
}

/** Test-time settings of the sliding window (see infer/sliding-window.ts). */
export interface InferenceSettings {
  /** Mirroring TTA over every spatial axis (nnU-Net's default). */
  mirror: boolean;
  stepFraction: number;
  /** 2D only: also transpose the plane, for all 8 symmetries of the square. */
  transpose: boolean;
  /** Forward pass arithmetic of prediction; default fp32. */
  precision: Precision;
}

/** A completed plan: what every consumer reads. */
export interface Plan {
  schema: typeof PLAN_SCHEMA;
  dataset: string;
  dims: '2d' | '3d_fullres';
  channels: string[];
  labels: Record<number, string>;
  /** [z, y, x] mm; in 2D plans z is kept as is (no resampling across slices). */
  targetSpacing: Zyx;
  /** Median case shape after resampling, [z, y, x]. */
  medianShape: Zyx;
  /** [z, y, x] (3D) or [y, x] (2D). */
  patchSize: number[];
  batchSize: number;
  network: NetworkConfig;
  normalization: ChannelNormalization[];
  resampling: { image: 'bspline3' | 'linear'; label: 'onehot-linear'; separateZ: boolean; anisotropyThreshold: number };
  augmentation: AugmentationParams;
  /** Fraction of patches centred on foreground (nnU-Net: 0.33). */
  oversampleForeground: number;
  iterationsPerEpoch: number;
  epochs: number;
  budget: BudgetInfo | null;
  /** The untouched nnU-Net choice when the budget scaled the plan down. */
  reference: { patchSize: number[]; batchSize: number; features: number[] };
  /** Optimiser, schedule and loss. */
  training: TrainingSettings;
  /** Sliding-window settings for validation and prediction. */
  inference: InferenceSettings;
  /** Why training.precision and inference.precision are what they are. */
  precisionChoice: PrecisionChoice;
  /** Set by a semi-supervised training run (`medseg train --semi`) in the model folder's plan. */
  semiSupervised?: SemiSupervisedRecord;
  /** 2D budgeted plans: the in-plane resolution chosen for the objects' size (data/object-size.ts); factor > 1 trains coarser than the data. */
  resolution?: { factor: number; reason: string };
}

/** A plan before completion: the planner's output, or a hand-written file without some sections. */
export type PlanDraft = Omit<Plan, 'training' | 'inference' | 'precisionChoice'> & {
  training?: Partial<Omit<TrainingSettings, 'loss'>> & { loss?: Partial<TrainingSettings['loss']> };
  inference?: Partial<InferenceSettings>;
  precisionChoice?: PrecisionChoice;
};

/** The training choices a user makes when planning; the rest follows from the plan. */
export interface TrainingChoices {
  optimizer?: 'sgd' | 'adamw';
  loss?: TrainingSettings['loss']['name'];
  /** Weight of the skeleton-recall term (2D plans; absent or 0: none). */
  skeletonRecall?: number;
  /** Average the weights of the epochs after this share of the run (training.weightAveraging; absent: none). */
  averageWeights?: number;
  /** With averageWeights: hold the learning rate at this share of its peak while averaging (training.weightAveraging.lr). */
  averageLr?: number;
}
