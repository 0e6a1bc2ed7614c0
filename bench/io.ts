/**
 * Read speed of medseg's readers against the Python readers (nibabel, the
 * numpy NRRD reference, pydicom) in the same run, per format; compressed
 * DICOM reads per transfer syntax against pydicom + gdcm's codecs
 * (io-dicom-compressed.ts); de-identification of a series against a pydicom
 * loop and gdcmanon (io-deidentify.ts).
 * Writes bench/results/io.json: {row: {medseg_s, python_s, ratio, ...}}.
 *
 *   npm run bench -- io                       every group
 *   npm run bench -- io compressed deidentify  only these groups (nifti, dicom, compressed, deidentify);
 *                                              the other rows of io.json are kept
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Row = { medseg_s: number; python_s: number; ratio: number; [k: string]: unknown };

const GROUPS = ['nifti', 'dicom', 'compressed', 'deidentify'] as const;

export async function main(args: string[] = []): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const unknown = args.filter((a) => !(GROUPS as readonly string[]).includes(a));
  if (unknown.length) throw new Error(`unknown io bench group(s) ${unknown.join(', ')}; groups: ${GROUPS.join(', ')}`);
  const groups = args.length ? args : [...GROUPS];
  const loadavgBefore = loadavg();
  const file = join(here, 'results/io.json');
  // A subset run keeps the rows of the groups it did not run.
  const results: Record<string, Row> =
    args.length && existsSync(file) ? ((JSON.parse(readFileSync(file, 'utf8')) as { results: Record<string, Row> }).results ?? {}) : {};
  if (groups.includes('nifti')) Object.assign(results, await (await import('./io-nifti.ts')).run());
  if (groups.includes('dicom')) Object.assign(results, await (await import('./io-dicom.ts')).run());
  if (groups.includes('compressed')) Object.assign(results, await (await import('./io-dicom-compressed.ts')).run());
  if (groups.includes('deidentify')) Object.assign(results, await (await import('./io-deidentify.ts')).run());
  const out = {
    command: `npm run bench -- io${args.length ? ` ${args.join(' ')}` : ''}`,
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadavgBefore, loadavgAfter: loadavg() },
    note: 'ratio = medseg_s / python_s; below 1 means medseg is faster. Medians of the rounds after a warm-up; Python timed inside the interpreter (imports excluded). Compressed rows: per series, peer and largest decode difference in each row. De-identification rows: seconds per series, folder in to folder out.',
    results,
  };
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.table(Object.fromEntries(Object.entries(results).map(([k, r]) => [k, { medseg_s: r.medseg_s, python_s: r.python_s, ratio: r.ratio }])));
}
