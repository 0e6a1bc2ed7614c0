/**
 * The explanation of one case with a trained model folder: preprocess like
 * prediction, predict (one pass per tile), choose the target region (the
 * class's predicted mask, or a box given on the input's voxel grid), run the
 * method, check its faithfulness, and map the heat maps and the prediction
 * back onto the input's grid as prediction does.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { Volume } from '../io/volume.ts';
import type { PreprocessedCase } from '../data/types.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import type { Plan } from '../plan/types.ts';
import { prepareInput, type LoadedModel } from '../infer/predict.ts';
import { revertPreprocessing } from '../data/preprocess.ts';
import { explainImage, plainLogits, type ExplainMethod } from './explain-image.ts';
import { deletionCurve, randomisationTest, type DeletionCurve, type RandomisationResult } from './faithfulness.ts';
import type { TargetKind } from './target.ts';
import { MedsegExplainError } from './errors.ts';

export interface CaseExplanationOptions {
  method: ExplainMethod;
  /** Class explained (default 1, the first foreground class). */
  classIndex?: number;
  kind?: TargetKind;
  /** Grad-CAM layer. */
  layer?: string;
  /** Target region as a box on the input's voxel grid: [x, y, z] start (inclusive) and end (exclusive). */
  box?: { start: [number, number, number]; end: [number, number, number] };
  /** Which loaded fold's network explains (index into the model's folds; default the first). */
  fold?: number;
  window?: number[];
  stride?: number[];
  steps?: number;
  baseline?: number;
  /** Run the randomisation test and the deletion curve (default true). */
  faithfulness?: boolean;
  /** Deletion-curve steps (default 10). */
  deletionSteps?: number;
  /** Seed of the randomised network and the random deletion order. */
  seed?: number;
  /** Progress of each stage: the explanation's tiles, the randomised network's tiles, the deletion curve's predictions. */
  onProgress?: (stage: ExplainStage, done: number, total: number) => void;
}

export type ExplainStage = 'explanation tiles' | 'randomised-network tiles' | 'deletion-curve predictions';

export interface CaseExplanation {
  method: ExplainMethod;
  classIndex: number;
  /** The method's map on the input's grid (float32). */
  heat: Volume;
  /** Every map by name (attention gives several; the others one, equal to heat). */
  maps: Map<string, Volume>;
  primary: string;
  /** The fold's prediction on the input's grid (one pass per tile, no TTA), what the default region comes from. */
  labels: Volume;
  region: { source: 'predicted mask' | 'box' | 'whole image'; voxels: number; note?: string };
  settings: Record<string, unknown>;
  fold: number;
  /** Share of the positive heat inside the region (on the network's grid). */
  massInRegion: number;
  faithfulness?: { randomisation: RandomisationResult; deletion: DeletionCurve };
  seconds: number;
}

/** A box on the input grid (x, y, z voxel indices, end exclusive) as a uint8 mask (x-fastest). */
function boxLabel(size: [number, number, number], box: NonNullable<CaseExplanationOptions['box']>): Uint8Array {
  const lo = box.start.map((s, i) => Math.max(0, Math.min(size[i]!, Math.round(s))));
  const hi = box.end.map((e, i) => Math.max(0, Math.min(size[i]!, Math.round(e))));
  if (lo.some((l, i) => l >= hi[i]!))
    throw new MedsegExplainError('BAD_OPTION', `the box [${box.start}] .. [${box.end}] holds no voxel of the image (size ${size.join('x')})`);
  const out = new Uint8Array(size[0] * size[1] * size[2]);
  for (let z = lo[2]!; z < hi[2]!; z++)
    for (let y = lo[1]!; y < hi[1]!; y++) out.fill(1, (z * size[1] + y) * size[0] + lo[0]!, (z * size[1] + y) * size[0] + hi[0]!);
  return out;
}

/** The class to explain (default 1), checked against the model's classes. */
function checkedClass(plan: Plan, classIndex = 1): number {
  const K = plan.network.numClasses;
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= K) {
    throw new MedsegExplainError('BAD_OPTION', `class ${classIndex} is not one of the model's classes 0..${K - 1} (${Object.values(plan.labels).join(', ')})`);
  }
  return classIndex;
}

/** An explanation on the network's grid (explainOnGrid). */
export interface GridExplanation {
  /** Map names in the order of `maps`' channels. */
  names: string[];
  primary: string;
  settings: Record<string, unknown>;
  /** The maps stacked [M, ...spatial] (float32, network grid). */
  maps: Float32Array;
  /** The network's prediction (one pass per tile, no TTA). */
  labels: Uint8Array;
  region: CaseExplanation['region'];
  massInRegion: number;
  faithfulness?: CaseExplanation['faithfulness'];
}

/**
 * Explains a preprocessed case on the network's grid with one network:
 * the target region is `box` (a mask on that grid) or else the class's
 * predicted mask; the faithfulness checks run unless switched off.
 */
export function explainOnGrid(
  net: SegmentationNetwork,
  plan: Plan,
  c: PreprocessedCase,
  o: Omit<CaseExplanationOptions, 'box' | 'fold'>,
  box: Uint8Array | null = null,
): GridExplanation {
  const classIndex = checkedClass(plan, o.classIndex);
  const spatial = plan.dims === '2d' ? c.shape.slice(1) : c.shape;
  const patch = plan.patchSize;
  const stepFraction = plan.inference.stepFraction;
  const target = { classIndex, kind: o.kind };
  return torch.tidy(() => {
    const image = torch.tensor(c.data, [c.channels, ...spatial]);
    const logits = plainLogits(net, image, { patchSize: patch, stepFraction });
    const predicted = logits.argmax(0);
    let region: Tensor;
    let source: CaseExplanation['region']['source'];
    let note: string | undefined;
    if (box) {
      region = torch.tensor(box, spatial).float();
      source = 'box';
      if (region.sum().item() === 0) {
        throw new MedsegExplainError('BAD_OPTION', 'the box lies outside the part of the image the model sees (its nonzero crop)');
      }
    } else {
      region = predicted.eq(classIndex).float();
      source = 'predicted mask';
      if (region.sum().item() === 0) {
        region = torch.onesLike(region);
        source = 'whole image';
        note = `class ${classIndex} is predicted nowhere in this case, so the whole image is the region`;
      }
    }
    const explained = explainImage(net, image, region, {
      method: o.method,
      target,
      patchSize: patch,
      stepFraction,
      layer: o.layer,
      window: o.window,
      stride: o.stride,
      steps: o.steps,
      baseline: o.baseline,
      onProgress: o.onProgress ? (done, total) => o.onProgress!('explanation tiles', done, total) : undefined,
    });
    const primaryMap = explained.maps.get(explained.primary)!;
    const positive = primaryMap.relu();
    const total = positive.sum().item();
    const massInRegion = total > 0 ? positive.mul(region).sum().item() / total : NaN;
    let faithfulness: CaseExplanation['faithfulness'];
    if (o.faithfulness !== false) {
      const common = {
        method: o.method,
        target,
        patchSize: patch,
        stepFraction,
        layer: explained.settings.layer as string | undefined,
        window: o.window,
        stride: o.stride,
        steps: o.steps,
        baseline: o.baseline,
      };
      faithfulness = {
        randomisation: randomisationTest(net, image, region, primaryMap, {
          ...common,
          seed: o.seed,
          onProgress: o.onProgress ? (done, total) => o.onProgress!('randomised-network tiles', done, total) : undefined,
        }),
        deletion: deletionCurve(net, image, primaryMap, classIndex, {
          patchSize: patch,
          stepFraction,
          steps: o.deletionSteps,
          baseline: o.baseline,
          seed: o.seed,
          onProgress: o.onProgress ? (done, total) => o.onProgress!('deletion-curve predictions', done, total) : undefined,
        }),
      };
    }
    const names = [...explained.maps.keys()];
    const stacked = torch.stack(
      names.map((n) => explained.maps.get(n)!),
      0,
    );
    const voxels = region.sum().item();
    return {
      names,
      primary: explained.primary,
      settings: explained.settings,
      maps: stacked.contiguous().toFloat32Array(),
      labels: predicted.to('uint8').contiguous().toTypedArray() as Uint8Array,
      region: note ? { source, voxels, note } : { source, voxels },
      massInRegion,
      faithfulness,
    };
  });
}

/** Explains one case given its channel images (same grid). */
export function explainVolumes(m: LoadedModel, images: Volume[], o: CaseExplanationOptions): CaseExplanation {
  const t0 = performance.now();
  const plan = m.plan;
  const classIndex = checkedClass(plan, o.classIndex);
  const foldIndex = o.fold ?? 0;
  const net = m.nets[foldIndex];
  if (!net) throw new MedsegExplainError('BAD_OPTION', `the model has ${m.nets.length} loaded fold(s); fold index ${foldIndex} is not one`);
  const first = images[0];
  if (!first) throw new MedsegExplainError('BAD_OPTION', 'no input image');
  const prepared = prepareInput(plan, images, o.box ? boxLabel(first.size, o.box) : null);
  const c = prepared.case;
  if (o.box && !c.label!.some((v) => v > 0)) {
    throw new MedsegExplainError(
      'BAD_OPTION',
      `the box [${o.box.start}] .. [${o.box.end}] lies outside the part of the image the model sees (its nonzero crop)`,
    );
  }
  const result = explainOnGrid(net, plan, c, o, o.box ? c.label : null);
  const M = result.names.length;
  const back = revertPreprocessing({ maps: result.maps, channels: M }, c.shape, c.properties, plan) as Float32Array;
  const labels = revertPreprocessing({ label: result.labels }, c.shape, c.properties, plan) as Uint8Array;
  const n = prepared.voxels;
  const meta = { ...first.meta, extra: { source: first.meta.sourcePath } };
  const maps = new Map<string, Volume>(
    result.names.map((name, i) => [name, { ...prepared.geometry, channels: 1, data: back.slice(i * n, (i + 1) * n), meta: { ...meta, modality: 'OT' } }]),
  );
  return {
    method: o.method,
    classIndex,
    heat: maps.get(result.primary)!,
    maps,
    primary: result.primary,
    labels: { ...prepared.geometry, channels: 1, data: labels, meta: { ...meta, modality: 'SEG' } },
    region: result.region,
    settings: result.settings,
    fold: m.folds[foldIndex]!,
    massInRegion: result.massInRegion,
    faithfulness: result.faithfulness,
    seconds: (performance.now() - t0) / 1000,
  };
}
