/**
 * How the CLI turns a thrown error into a message and an exit code.
 *
 * Exit codes: 0 ok; 1 bad usage (commander's own code) or an unexpected error
 * (a bug: the stack is shown with MEDSEG_DEBUG=1); 2 bad input — a typed
 * error saying what is wrong with which file and what to do (MedsegIoError,
 * and the metric/statistics errors that likewise describe the user's data).
 */
import { CommanderError } from 'commander';
import { MedsegIoError } from '../io/errors.ts';
import { MetricsError } from '../eval/metrics_errors.ts';
import { MedsegStatsError } from '../eval/statistics/errors.ts';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_BAD_INPUT = 2;

/** A problem with the command line the user can fix (bad option value, ...): exit 1 like commander's usage errors. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

export interface ErrorReport {
  exitCode: number;
  /** Lines for stderr. */
  message: string;
  /** Machine-readable form for --json. */
  json: { ok: false; error: { type: string; code?: string; path?: string; message: string } };
}

const HINTS: Partial<Record<string, string>> = {
  NOT_FOUND: 'check the path (relative paths are resolved from the current directory)',
  TRUNCATED: 'the file is incomplete: copy or export it again',
  CORRUPT: 'the file is damaged or not what its name says: re-export it',
  BAD_MAGIC: 'the file is not in the format its name suggests',
  UNSUPPORTED: 'convert the file to NIfTI (.nii.gz), NRRD or PNG',
  BAD_GEOMETRY: 'predictions must lie on the reference grid: resample them with the reference as target',
  TOO_LARGE: 'the file exceeds the reader limits',
};

export function describeError(err: unknown, debug = process.env.MEDSEG_DEBUG === '1'): ErrorReport {
  if (err instanceof CommanderError) {
    // commander has already printed its message (and help) to stderr
    return { exitCode: err.exitCode, message: '', json: { ok: false, error: { type: 'usage', code: err.code, message: err.message } } };
  }
  const stack = (e: Error) => (debug && e.stack ? `\n${e.stack}` : '');
  if (err instanceof MedsegIoError) {
    const hint = HINTS[err.code];
    return {
      exitCode: EXIT_BAD_INPUT,
      message: `medseg: error: ${err.message}${hint ? `\n  hint: ${hint}` : ''}${stack(err)}`,
      json: { ok: false, error: { type: 'io', code: err.code, path: err.path, message: err.message } },
    };
  }
  if (err instanceof MetricsError || err instanceof MedsegStatsError) {
    return {
      exitCode: EXIT_BAD_INPUT,
      message: `medseg: error: ${err.message}${stack(err)}`,
      json: { ok: false, error: { type: err instanceof MetricsError ? 'metrics' : 'statistics', code: err.code, message: err.message } },
    };
  }
  if (err instanceof CliUsageError) {
    return { exitCode: EXIT_ERROR, message: `medseg: error: ${err.message}${stack(err)}`, json: { ok: false, error: { type: 'usage', message: err.message } } };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    exitCode: EXIT_ERROR,
    message: `medseg: unexpected error: ${e.message}${debug ? stack(e) : '\n  (run with MEDSEG_DEBUG=1 for the stack trace)'}`,
    json: { ok: false, error: { type: 'internal', message: e.message } },
  };
}
