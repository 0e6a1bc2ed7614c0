/**
 * How the CLI turns a thrown error into a message and an exit code.
 *
 * Exit codes (EXIT_CODES_HELP prints them in `medseg --help`):
 * 0 success; 1 an unexpected error (a bug: the stack is shown with
 * MEDSEG_DEBUG=1); 2 bad input — a typed error saying what is wrong with which
 * file (MedsegIoError, and the metric/statistics errors that likewise describe
 * the user's data); 64 a usage error (EX_USAGE of BSD's sysexits.h): unknown
 * command or option, missing or invalid argument, from commander's parser or
 * a command's own CliUsageError. Help and --version exit 0.
 */
import { CommanderError } from 'commander';
import { MedsegIoError } from '../io/errors.ts';
import { MetricsError } from '../eval/metrics_errors.ts';
import { MedsegStatsError } from '../eval/statistics/errors.ts';
import { FederationError } from '../federated/errors.ts';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_USAGE = 64;

export const EXIT_CODES_HELP = `Exit codes:
  ${EXIT_OK}   success
  ${EXIT_ERROR}   unexpected error, a bug (MEDSEG_DEBUG=1 prints the stack trace)
  ${EXIT_BAD_INPUT}   bad input: a file is missing, unreadable or inconsistent (the message names it)
  ${EXIT_USAGE}  usage error: unknown command or option, missing or invalid argument`;

/** A problem with the command line the user can fix (options that contradict each other, ...): exit 64 like commander's usage errors. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** Bad input found by a library step that has no typed error of its own (a model that cannot be exported): exit 2. */
export class CliBadInputError extends Error {
  override readonly name = 'CliBadInputError';
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
    // commander has already printed its message (and help) to stderr; help and --version are its exit 0
    return {
      exitCode: err.exitCode === EXIT_OK ? EXIT_OK : EXIT_USAGE,
      message: '',
      json: { ok: false, error: { type: 'usage', code: err.code, message: err.message } },
    };
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
  if (err instanceof FederationError) {
    return {
      exitCode: EXIT_BAD_INPUT,
      message: `medseg: error: ${err.message}${stack(err)}`,
      json: { ok: false, error: { type: 'federation', code: err.code, message: err.message } },
    };
  }
  if (err instanceof CliBadInputError) {
    return {
      exitCode: EXIT_BAD_INPUT,
      message: `medseg: error: ${err.message}${stack(err)}`,
      json: { ok: false, error: { type: 'input', message: err.message } },
    };
  }
  // pipeline/finetune-pruned.ts's FineTuneError (a budget that is no budget, a split or folder that cannot be used), known by name so that this module does not load the engine.
  if (err instanceof Error && err.name === 'FineTuneError') {
    return {
      exitCode: EXIT_BAD_INPUT,
      message: `medseg: error: ${err.message}${stack(err)}`,
      json: { ok: false, error: { type: 'finetune', message: err.message } },
    };
  }
  // @medseg/torch's DistributedError, known by name so that this module does not load the engine.
  if (err instanceof Error && err.name === 'DistributedError') {
    const code = (err as Error & { code?: string }).code;
    return {
      exitCode: EXIT_ERROR,
      message:
        `medseg: error: data-parallel training stopped: ${err.message}${stack(err)}` +
        '\n  hint: once every rank can run again, the same command with --resume continues from the last checkpoint',
      json: { ok: false, error: { type: 'distributed', ...(code ? { code } : {}), message: err.message } },
    };
  }
  if (err instanceof CliUsageError) {
    return { exitCode: EXIT_USAGE, message: `medseg: error: ${err.message}${stack(err)}`, json: { ok: false, error: { type: 'usage', message: err.message } } };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    exitCode: EXIT_ERROR,
    message: `medseg: unexpected error: ${e.message}${debug ? stack(e) : '\n  (run with MEDSEG_DEBUG=1 for the stack trace)'}`,
    json: { ok: false, error: { type: 'internal', message: e.message } },
  };
}
