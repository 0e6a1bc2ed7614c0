/** Copies held-out cases of a paired images/ + labels/ folder into <out>/validation/{images,labels} for predict + evaluate. */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function stageHeldOut(source: string, ids: string[], out: string, ending = '.nii.gz'): { imgDir: string; refDir: string } {
  const imgDir = join(out, 'validation/images');
  const refDir = join(out, 'validation/labels');
  rmSync(join(out, 'validation'), { recursive: true, force: true });
  mkdirSync(imgDir, { recursive: true });
  mkdirSync(refDir, { recursive: true });
  for (const id of ids) {
    copyFileSync(join(source, 'images', `${id}${ending}`), join(imgDir, `${id}${ending}`));
    copyFileSync(join(source, 'labels', `${id}${ending}`), join(refDir, `${id}${ending}`));
  }
  return { imgDir, refDir };
}
