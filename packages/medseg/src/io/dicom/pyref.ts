/**
 * Test helper: runs dicom_ref.py (pydicom + numpy, Debian's /usr/bin/python3)
 * once for a batch of jobs and loads the float32 arrays it writes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), 'dicom_ref.py');

export interface RefJob {
  op: 'series' | 'multiframe' | 'nrrd' | 'seginfo' | 'dump' | 'python';
  [k: string]: unknown;
}

export function runRef<R = Record<string, unknown>>(jobs: RefJob[]): { info: R; data?: Float32Array }[] {
  const dir = mkdtempSync(join(tmpdir(), 'medseg-dcmref-'));
  try {
    const withOut = jobs.map((j, i) => ({ ...j, out: join(dir, `${i}.f32`) }));
    const stdout = execFileSync('/usr/bin/python3', [script, JSON.stringify(withOut)], { maxBuffer: 1 << 28, encoding: 'utf8' });
    const infos = JSON.parse(stdout) as R[];
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

/** Runs an inline Python snippet (pydicom/numpy) with argv; returns stdout. */
export function runPython(code: string, args: string[] = []): string {
  return execFileSync('/usr/bin/python3', ['-c', code, ...args], { maxBuffer: 1 << 28, encoding: 'utf8' });
}
