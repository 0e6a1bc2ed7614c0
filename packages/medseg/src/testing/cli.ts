/**
 * Runs the medseg command line from the sources in a child process, as a user
 * would, for tests that check exit codes, stdout and stderr.
 */
import { spawnSync } from 'node:child_process';
import { repoRoot } from './data.ts';

const MAIN = 'packages/medseg/src/cli/main.ts';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `medseg <args>` with the stack-trace switch off; `timeoutMs` bounds a run that hangs. */
export function runMedseg(args: string[], o: { timeoutMs?: number } = {}): CliRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, MEDSEG_DEBUG: '' },
    timeout: o.timeoutMs ?? 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
