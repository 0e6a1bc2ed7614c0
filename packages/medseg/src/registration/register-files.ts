/**
 * Registration of two image files: reads them (and the moving labels), runs
 * registerPair and writes, in the fixed image's geometry, warped.nii.gz,
 * field.nii.gz (vector intent, LPS mm, ITK's convention), warped-labels.nii.gz
 * and registration.json (affine, folding fraction, timings).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readVolume, writeVolume } from '../io/read.ts';
import { RegistrationModel } from './network.ts';
import { registerPair, type RegisterPairOptions } from './register-pair.ts';

export interface RegisterFilesOptions extends Omit<RegisterPairOptions, 'model'> {
  movingLabels?: string;
  /** Folder of a trained registration model. */
  model?: string;
}

export interface RegisterFilesResult {
  warpedImage: string;
  field: string;
  warpedLabels: string | null;
  summary: string;
  affine: number[];
  foldingFraction: number;
  seconds: { affine: number; deformable: number };
  method: 'affine' | 'instance-optimisation' | 'model';
}

export async function registerFiles(fixedPath: string, movingPath: string, outDir: string, o: RegisterFilesOptions = {}): Promise<RegisterFilesResult> {
  const fixed = await readVolume(fixedPath);
  const moving = await readVolume(movingPath);
  const labels = o.movingLabels ? await readVolume(o.movingLabels) : null;
  const model = o.model && !o.affineOnly ? RegistrationModel.load(o.model) : undefined;
  const r = registerPair(fixed, moving, labels, { ...o, model });
  model?.net.dispose();
  await mkdir(outDir, { recursive: true });
  const out = {
    warpedImage: join(outDir, 'warped.nii.gz'),
    field: join(outDir, 'field.nii.gz'),
    warpedLabels: r.warpedLabels ? join(outDir, 'warped-labels.nii.gz') : null,
    summary: join(outDir, 'registration.json'),
  };
  await writeVolume(out.warpedImage, r.warpedImage);
  await writeVolume(out.field, r.field);
  if (r.warpedLabels && out.warpedLabels) await writeVolume(out.warpedLabels, r.warpedLabels);
  const method = o.affineOnly ? 'affine' : model ? 'model' : 'instance-optimisation';
  const summary = { fixed: fixedPath, moving: movingPath, method, affine: r.affine, foldingFraction: r.foldingFraction, seconds: r.seconds };
  await writeFile(out.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return { ...out, affine: r.affine, foldingFraction: r.foldingFraction, seconds: r.seconds, method };
}
