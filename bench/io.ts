/**
 * Read speed of medseg's readers against the Python readers (nibabel, the
 * numpy NRRD reference, pydicom) in the same run, per format.
 * Writes bench/results/io.json: {format: {medseg_s, python_s, ratio}}.
 *
 *   npm run bench -- io
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Row = { medseg_s: number; python_s: number; ratio: number };

export async function main(): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const results: Record<string, Row> = {};
  const nifti = await import('./io-nifti.ts');
  Object.assign(results, await nifti.run());
  const dicom = await import('./io-dicom.ts');
  Object.assign(results, await dicom.run());
  const out = {
    command: 'npm run bench -- io',
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length },
    note: 'ratio = medseg_s / python_s; below 1 means medseg reads faster. Medians of 3 rounds after a warm-up; Python timed inside the interpreter (imports excluded).',
    results,
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results/io.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.table(results);
}
