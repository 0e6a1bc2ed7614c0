/**
 * Runs io/dicom/results_ref.py (pydicom + numpy + scikit-image) once for a
 * batch of SEG / RTSTRUCT jobs and loads the float32 arrays it writes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPython } from './python.ts';

const script = join(dirname(fileURLToPath(import.meta.url)), '../io/dicom/results_ref.py');

export interface ResultsRefJob {
  op: 'seg' | 'rtstruct';
  file: string;
  /** The source series' files (the geometry and SOP instances the result references). */
  source?: string[];
}

export function runResultsRef<R>(jobs: ResultsRefJob[]): { info: R; data: Float32Array }[] {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-resref-'));
  try {
    const withOut = jobs.map((j, i) => ({ ...j, out: join(dir, `${i}.f32`) }));
    const infos = JSON.parse(runPython([script, JSON.stringify(withOut)])) as R[];
    return infos.map((info, i) => {
      const b = readFileSync(withOut[i]!.out);
      return { info, data: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
