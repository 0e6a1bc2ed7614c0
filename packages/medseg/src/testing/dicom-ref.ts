/**
 * Runs io/dicom/dicom_ref.py (pydicom + numpy) once for a batch of jobs and
 * loads the float32 arrays it writes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPython } from './python.ts';

const script = join(dirname(fileURLToPath(import.meta.url)), '../io/dicom/dicom_ref.py');

export interface RefJob {
  op: 'series' | 'multiframe' | 'nrrd' | 'seginfo' | 'dump' | 'python';
  [k: string]: unknown;
}

export function runRef<R = Record<string, unknown>>(jobs: RefJob[]): { info: R; data?: Float32Array }[] {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-dcmref-'));
  try {
    const withOut = jobs.map((j, i) => ({ ...j, out: join(dir, `${i}.f32`) }));
    const infos = JSON.parse(runPython([script, JSON.stringify(withOut)])) as R[];
    return infos.map((info, i) => {
      let data: Float32Array | undefined;
      try {
        const b = readFileSync(withOut[i]!.out);
        data = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      } catch {
        data = undefined;
      }
      return { info, data };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
