/**
 * Test helper: validates a DICOM file against its IOD with dicom3tools'
 * dciodvfy (Debian dicom3tools; scripts/setup.sh test installs it). Lines
 * starting "Error" are errors, "Warning" warnings; the IOD it checked against
 * is the line naming it.
 */
import { spawnSync } from 'node:child_process';

export interface DciodvfyReport {
  /** The IOD dciodvfy recognised (e.g. "Segmentation", "RTStructureSet"). */
  iod: string;
  errors: string[];
  warnings: string[];
  output: string;
}

export function dciodvfy(path: string): DciodvfyReport {
  const r = spawnSync('dciodvfy', [path], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error) throw new Error(`dciodvfy: ${r.error.message} (Debian package dicom3tools)`);
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split('\n').map((l) => l.trim());
  return {
    iod: lines.find((l) => l !== '' && !/^(Error|Warning)\b/.test(l)) ?? '',
    errors: lines.filter((l) => /^Error\b/.test(l)),
    warnings: lines.filter((l) => /^Warning\b/.test(l)),
    output,
  };
}

/** A skip message for node:test when dciodvfy is not installed, else false. */
export function skipWithoutDciodvfy(): string | false {
  return spawnSync('sh', ['-c', 'command -v dciodvfy']).status === 0 ? false : 'needs dciodvfy (Debian dicom3tools: bash scripts/setup.sh test)';
}
