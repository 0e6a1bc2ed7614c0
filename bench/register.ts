/**
 * Registration on hippocampus MR, atlas to subject: one training case is the
 * atlas (moving image and labels), the first validation cases are the
 * subjects (fixed). For each pair, Dice and HD95 of the warped atlas labels
 * against the subject's (anterior, posterior), the fraction of fixed voxels
 * where the transform folds (Jacobian determinant <= 0, central differences
 * of the displacement field in mm), and the wall time of the registration:
 * - none: the atlas labels resampled through the identity world map;
 * - affine: medseg's 12-parameter affine (NCC, pyramid 4/2/1);
 * - medseg deformable: affine + per-pair instance optimisation (local NCC
 *   window 9, diffusion weight 1, 150 Adam steps);
 * - medseg learned (with --train-seconds > 0): affine + the registration
 *   U-Net trained for that budget on atlas -> training-split pairs
 *   (unsupervised, local NCC; with --supervised also the Dice of the warped
 *   atlas labels against the training subjects'), one forward pass per pair;
 * - elastix: Debian's elastix 5, affine then B-spline, Mattes MI, adaptive
 *   stochastic gradient descent, 3 resolutions (parameter files below), the
 *   labels warped by transformix with nearest-neighbour interpolation and
 *   the field from `transformix -def all` (its folding fraction is also
 *   given from transformix's own Jacobian, `-jac all`, as a check).
 * Both tools use every core (medseg's libtorch threads, elastix -threads).
 *
 *   npm run bench -- register [--subjects 10] [--iterations 150] [--train-seconds 300] [--train-pairs 30] [--supervised] [--smoke]
 * (--smoke: 2 subjects, 20 steps, a 10 s training run, nothing written)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as torch from '@medseg/torch';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';
import { evaluateCase } from '../packages/medseg/src/eval/metrics.ts';
import { readVolume } from '../packages/medseg/src/io/read.ts';
import type { Volume } from '../packages/medseg/src/io/volume.ts';
import { resampleAffine } from '../packages/medseg/src/registration/affine.ts';
import { geometryOf, volumeTensor } from '../packages/medseg/src/registration/grid.ts';
import { foldingFraction, jacobianDeterminant } from '../packages/medseg/src/registration/jacobian.ts';
import { RegistrationModel } from '../packages/medseg/src/registration/network.ts';
import { trainRegistrationFiles } from '../packages/medseg/src/registration/train-files.ts';
import { registerPair, type RegisterPairOptions } from '../packages/medseg/src/registration/register-pair.ts';
import { dataPath } from '../packages/medseg/src/testing/data.ts';
import { writeResult } from './lib/report.ts';
import { median, round } from './lib/stats.ts';

const LABELS = [1, 2];
const IDENTITY4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

const COMMON = `(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
(UseDirectionCosines "true")
(Registration "MultiResolutionRegistration")
(Interpolator "BSplineInterpolator")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Optimizer "AdaptiveStochasticGradientDescent")
(Metric "AdvancedMattesMutualInformation")
(NumberOfHistogramBins 32)
(NumberOfResolutions 3)
(ImageSampler "RandomCoordinate")
(NumberOfSpatialSamples 4096)
(NewSamplesEveryIteration "true")
(BSplineInterpolationOrder 1)
(FinalBSplineInterpolationOrder 3)
(DefaultPixelValue 0)
(HowToCombineTransforms "Compose")
(WriteResultImage "false")
(ResultImageFormat "nii.gz")
(ResultImagePixelType "float")
`;

/** elastix's affine stage: centres aligned first (as medseg's affine), scales estimated. */
export const ELASTIX_AFFINE = `${COMMON}(Transform "AffineTransform")
(AutomaticTransformInitialization "true")
(AutomaticTransformInitializationMethod "GeometricalCenter")
(AutomaticScalesEstimation "true")
(MaximumNumberOfIterations 250)
`;

/** The B-spline stage: control points 4 mm apart at the finest level (the crops are 30-60 mm wide), halved twice from coarse to fine. */
export const ELASTIX_BSPLINE = `${COMMON}(Transform "BSplineTransform")
(FinalGridSpacingInPhysicalUnits 4)
(GridSpacingSchedule 4 2 1)
(MaximumNumberOfIterations 500)
`;

interface MethodRow {
  subject: string;
  dice: number[];
  hd95: number[];
  folding: number;
  /** elastix only: the folding fraction of transformix's own (analytic B-spline) Jacobian determinant, a check on the field's reading. */
  foldingOwnJacobian?: number;
  seconds: number;
}

function scores(warped: ArrayLike<number>, reference: Volume): { dice: number[]; hd95: number[] } {
  const pred = Uint8Array.from(warped as ArrayLike<number>, (v) => Math.round(v));
  const e = evaluateCase(pred, reference.data, { size: reference.size, spacing: reference.spacing, labels: LABELS });
  return { dice: e.classes.map((c) => round(c.dice, 4)), hd95: e.classes.map((c) => round(c.hd95, 3)) };
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${(r.stdout ?? '').slice(-2000)}${r.stderr ?? ''}`);
}

/** elastix affine + B-spline for one pair: the warped labels, the field's folding fraction and the registration time. */
async function elastixPair(work: string, fixedPath: string, movingPath: string, labelsPath: string, threads: number) {
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'affine.txt'), ELASTIX_AFFINE);
  writeFileSync(join(work, 'bspline.txt'), ELASTIX_BSPLINE);
  const t0 = performance.now();
  run('elastix', [
    '-f',
    fixedPath,
    '-m',
    movingPath,
    '-p',
    join(work, 'affine.txt'),
    '-p',
    join(work, 'bspline.txt'),
    '-out',
    work,
    '-threads',
    String(threads),
  ]);
  const seconds = (performance.now() - t0) / 1000;
  // labels: the final transform with nearest-neighbour resampling into an integer image
  const tp = readFileSync(join(work, 'TransformParameters.1.txt'), 'utf8')
    .replace(/\(FinalBSplineInterpolationOrder \d+\)/, '(FinalBSplineInterpolationOrder 0)')
    .replace(/\(ResultImagePixelType "[^"]*"\)/, '(ResultImagePixelType "unsigned char")');
  writeFileSync(join(work, 'labels-tp.txt'), tp);
  const labelsOut = join(work, 'labels');
  mkdirSync(labelsOut, { recursive: true });
  run('transformix', ['-in', labelsPath, '-out', labelsOut, '-tp', join(work, 'labels-tp.txt'), '-threads', String(threads)]);
  const fieldOut = join(work, 'field');
  mkdirSync(fieldOut, { recursive: true });
  run('transformix', ['-def', 'all', '-jac', 'all', '-out', fieldOut, '-tp', join(work, 'TransformParameters.1.txt'), '-threads', String(threads)]);
  const warped = await readVolume(join(labelsOut, 'result.nii.gz'));
  const field = await readVolume(join(fieldOut, 'deformationField.nii.gz'));
  const jacobian = await readVolume(join(fieldOut, 'spatialJacobian.nii.gz'));
  return { warped, field, jacobian, seconds };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      subjects: { type: 'string', default: '10' },
      iterations: { type: 'string', default: '150' },
      'train-seconds': { type: 'string', default: '300' },
      'train-pairs': { type: 'string', default: '30' },
      supervised: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
    },
  });
  const smoke = values.smoke;
  const nSubjects = smoke ? 2 : Number(values.subjects);
  const iterations = smoke ? 20 : Number(values.iterations);
  const trainSeconds = smoke ? 10 : Number(values['train-seconds']);
  const trainPairs = smoke ? 3 : Number(values['train-pairs']);
  const threads = cpus().length;
  const loadBefore = loadavg();
  const atlas = HIPPOCAMPUS_SPLIT.train[0]!;
  const subjects = HIPPOCAMPUS_SPLIT.validation.slice(0, nSubjects);
  const image = (id: string) => dataPath('msd-hippocampus', 'images', `${id}.nii.gz`);
  const label = (id: string) => dataPath('msd-hippocampus', 'labels', `${id}.nii.gz`);
  const atlasImage = await readVolume(image(atlas));
  const atlasLabels = await readVolume(label(atlas));
  const work = mkdtempSync(join(tmpdir(), 'medseg-bench-register-'));

  let model: RegistrationModel | null = null;
  let training: Record<string, unknown> | null = null;
  if (trainSeconds > 0) {
    // training pairs: the atlas to training-split subjects (never the validation subjects it is scored on)
    const ids = HIPPOCAMPUS_SPLIT.train.slice(1, 1 + trainPairs);
    const pairs = ids.map((id) => ({ fixed: image(id), fixedLabels: label(id), moving: image(atlas), movingLabels: label(atlas) }));
    const dir = join(work, 'registration-model');
    const r = await trainRegistrationFiles(pairs, { out: dir, seconds: trainSeconds, supervised: values.supervised, lr: 1e-3, log: () => {} });
    model = RegistrationModel.load(dir);
    training = {
      pairs: ids.length,
      affineSeconds: round(r.affineSeconds, 1),
      seconds: trainSeconds,
      steps: r.steps,
      finalLoss: round(r.loss, 4),
      settings: model.settings,
    };
    console.log(`trained the registration U-Net for ${trainSeconds} s: ${r.steps} steps, loss ${r.loss.toFixed(4)}`);
  }

  const methods: Record<string, MethodRow[]> = {
    none: [],
    affine: [],
    'medseg deformable': [],
    ...(model ? { 'medseg learned': [] } : {}),
    'elastix b-spline': [],
  };
  try {
    for (const id of subjects) {
      const fixed = await readVolume(image(id));
      const reference = await readVolume(label(id));
      const none = torch.tidy(() =>
        resampleAffine({ image: volumeTensor(atlasLabels), geometry: geometryOf(atlasLabels) }, geometryOf(fixed), IDENTITY4, {
          mode: 'nearest',
        }).toFloat32Array(),
      );
      methods.none!.push({ subject: id, ...scores(none, reference), folding: 0, seconds: 0 });
      const variants: [string, RegisterPairOptions][] = [
        ['affine', { affineOnly: true }],
        ['medseg deformable', { deformable: { iterations } }],
        ...(model ? ([['medseg learned', { model }]] as [string, RegisterPairOptions][]) : []),
      ];
      for (const [name, o] of variants) {
        const r = registerPair(fixed, atlasImage, atlasLabels, o);
        methods[name]!.push({
          subject: id,
          ...scores(r.warpedLabels!.data, reference),
          folding: r.foldingFraction,
          seconds: round(r.seconds.affine + r.seconds.deformable, 2),
        });
      }
      const e = await elastixPair(join(work, id), image(id), image(atlas), label(atlas), threads);
      const det = jacobianDeterminant({
        data: Float32Array.from(e.field.data as ArrayLike<number>),
        size: e.field.size,
        spacing: e.field.spacing,
        direction: e.field.direction,
      });
      methods['elastix b-spline']!.push({
        subject: id,
        ...scores(e.warped.data, reference),
        folding: foldingFraction(det),
        foldingOwnJacobian: foldingFraction(e.jacobian.data),
        seconds: round(e.seconds, 2),
      });
      console.log(
        `${id}: ${Object.entries(methods)
          .map(
            ([k, rows]) =>
              `${k} ${rows
                .at(-1)!
                .dice.map((d) => d.toFixed(3))
                .join('/')}`,
          )
          .join(', ')}`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const summary = Object.fromEntries(
    Object.entries(methods).map(([k, rows]) => {
      const mean = (f: (r: MethodRow) => number) => round(rows.reduce((s, r) => s + f(r), 0) / rows.length, 4);
      return [
        k,
        {
          diceMean: LABELS.map((_, j) => mean((r) => r.dice[j]!)),
          hd95Mean: LABELS.map((_, j) => mean((r) => r.hd95[j]!)),
          foldingMean: mean((r) => r.folding),
          secondsMedian: round(median(rows.map((r) => r.seconds)), 2),
        },
      ];
    }),
  );
  console.log('\nmethod              Dice ant/post     HD95 ant/post (mm)  folding    s/pair');
  for (const [k, s] of Object.entries(summary)) {
    console.log(
      `${k.padEnd(20)}${s.diceMean
        .map((d) => d.toFixed(3))
        .join('/')
        .padEnd(18)}${s.hd95Mean
        .map((d) => d.toFixed(2))
        .join('/')
        .padEnd(20)}${(100 * s.foldingMean).toFixed(3).padStart(6)}%  ${s.secondsMedian.toFixed(2).padStart(7)}`,
    );
  }
  if (smoke) {
    console.log('(smoke run: nothing written)');
    return;
  }
  const path = writeResult(
    'register',
    argv,
    {
      atlas,
      subjects,
      threads,
      labels: { 1: 'anterior', 2: 'posterior' },
      settings: { deformableIterations: iterations, elastixAffine: ELASTIX_AFFINE, elastixBSpline: ELASTIX_BSPLINE },
      training,
      summary,
      perSubject: methods,
      loadavgAfter: loadavg(),
    },
    loadBefore,
  );
  console.log(`wrote ${path}`);
}
