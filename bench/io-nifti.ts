/**
 * NIfTI / NRRD read speed, medseg vs the Python reference in the same run:
 * - all 174 MSD hippocampus images + labels (.nii.gz): medseg readNifti vs
 *   nibabel (np.asanyarray(img.dataobj) forces the read);
 * - the pyradiomics NRRD files: medseg readNrrd vs the numpy reference reader
 *   used by the tests (pynrrd / SimpleITK are not available in Debian).
 * Each side: one warm-up round, then the median of 3 rounds; Python times are
 * taken inside the interpreter, so its start-up and imports are not counted.
 * ratio = medseg_s / python_s (below 1: medseg is faster).
 *
 * Alone: node --import tsx -e "import('./bench/io-nifti.ts').then(m=>m.run()).then(r=>console.log(r))"
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readNifti } from '../packages/medseg/src/io/nifti.ts';
import { readNrrd } from '../packages/medseg/src/io/nrrd.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';

const ROUNDS = 3;
const ioDir = join(repoRoot, 'packages/medseg/src/io');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeMedseg(paths: string[], read: (p: string) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    for (const p of paths) await read(p);
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

function timePython(script: string, paths: string[]): number {
  const out = execFileSync('/usr/bin/python3', [join(ioDir, script), 'bench'], {
    input: JSON.stringify({ paths, rounds: ROUNDS + 1 }),
  });
  return median((JSON.parse(out.toString()) as number[]).slice(1));
}

export async function run(): Promise<Record<string, { medseg_s: number; python_s: number; ratio: number }>> {
  const nii = ['images', 'labels'].flatMap((s) =>
    readdirSync(dataPath('msd-hippocampus', s))
      .filter((f) => f.endsWith('.nii.gz'))
      .sort()
      .map((f) => dataPath('msd-hippocampus', s, f)),
  );
  const nrrd = readdirSync(dataPath('pyradiomics-nrrd'))
    .filter((f) => f.endsWith('.nrrd'))
    .sort()
    .map((f) => dataPath('pyradiomics-nrrd', f));
  const result: Record<string, { medseg_s: number; python_s: number; ratio: number }> = {};
  const add = (name: string, medseg: number, python: number) =>
    (result[name] = { medseg_s: +medseg.toFixed(4), python_s: +python.toFixed(4), ratio: +(medseg / python).toFixed(3) });
  add(`nifti_read_hippocampus_${nii.length}_vs_nibabel`, await timeMedseg(nii, (p) => readNifti(p)), timePython('nibabel_ref.py', nii));
  add(`nrrd_read_pyradiomics_${nrrd.length}_vs_numpy_reference`, await timeMedseg(nrrd, (p) => readNrrd(p)), timePython('nrrd_ref.py', nrrd));
  return result;
}
