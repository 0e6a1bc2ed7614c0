/** Predicts every case of a file, a folder of images, or a DICOM series folder, with progress. */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { disposeModel, loadModel, predictVolumes, readInputCase, writePrediction } from '../infer/predict.ts';
import { createProgress, type ProgressReporter } from '../train/progress.ts';
import { MedsegIoError } from '../io/errors.ts';

const IMAGE = /\.(nii|nii\.gz|nrrd|nhdr|png|tif|tiff|jpe?g|bmp|gif)$/i;

/** The cases under `input`: one file, image files of a folder (channel 0 only), or a DICOM folder. */
export function listInputs(input: string): string[] {
  const p = resolve(input);
  if (!existsSync(p)) throw new MedsegIoError('NOT_FOUND', 'input does not exist', p);
  if (!statSync(p).isDirectory()) return [p];
  const files = readdirSync(p).filter((f) => IMAGE.test(f) && !/_000[1-9]\./.test(f)).sort();
  if (files.length) return files.map((f) => join(p, f));
  return [p]; // a folder without image files: a DICOM series
}

export async function predictPath(o: {
  model: string;
  input: string;
  out: string;
  tta?: boolean;
  folds?: number[];
  progress?: ProgressReporter;
}): Promise<{ outputs: { input: string; output: string; seconds: number }[] }> {
  const model = loadModel(o.model, { folds: o.folds });
  const inputs = listInputs(o.input);
  mkdirSync(o.out, { recursive: true });
  const progress = o.progress ?? createProgress('auto');
  const outputs: { input: string; output: string; seconds: number }[] = [];
  try {
    progress.start(inputs.length, `predicting (${model.nets.length} fold${model.nets.length > 1 ? 's' : ''})`);
    for (const [i, input] of inputs.entries()) {
      const images = await readInputCase(input, model.plan.channels.length);
      const pred = predictVolumes(model, images, { tta: o.tta });
      const output = await writePrediction(o.out, input, images[0]!, pred, model.plan);
      outputs.push({ input, output, seconds: pred.seconds });
      progress.update(i + 1, { last: `${pred.seconds.toFixed(2)} s` });
    }
    progress.stop();
  } finally {
    disposeModel(model);
  }
  return { outputs };
}
