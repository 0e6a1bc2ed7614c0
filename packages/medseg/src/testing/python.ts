/**
 * The one way medseg tests run their Python references: Debian's
 * /usr/bin/python3 (numpy, scipy, torch, nibabel, pydicom, PIL), one process
 * per batch of work, stdout returned as text. A failing script fails the test
 * with its exit status and stderr.
 */
import { spawnSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

export interface PythonOptions {
  /** Written to the script's stdin. */
  input?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/**
 * Runs python3 with `args` (a script path and its arguments, or ['-c', code,
 * ...]) and returns its stdout.
 */
export function runPython(args: string[], o: PythonOptions = {}): string {
  const r = spawnSync(PYTHON, args, {
    input: o.input,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...process.env, OMP_NUM_THREADS: '1', ...o.env },
  });
  if (r.error) throw new Error(`${PYTHON} ${args[0] ?? ''}: ${r.error.message}`);
  if (r.status !== 0) {
    const what = args[0] === '-c' ? 'inline script' : args[0];
    throw new Error(`${PYTHON} ${what} exited with ${r.status ?? r.signal}:\n${r.stderr}`);
  }
  return r.stdout;
}

/** runPython with `input` sent as JSON and stdout parsed as JSON. */
export function runPythonJson<T>(args: string[], input?: unknown): T {
  return JSON.parse(runPython(args, input === undefined ? {} : { input: JSON.stringify(input) })) as T;
}
