/**
 * Entry point of the `medseg` command (`npm run medseg` runs it from source,
 * bin/medseg.mjs its build in dist/).
 * All logic is in program.ts; this file only sets the exit code and makes
 * sure no error ever escapes as an unhandled-rejection trace.
 */
import { describeError, EXIT_ERROR } from './errors.ts';
import { runCli } from './program.ts';

const fatal = (err: unknown) => {
  const r = describeError(err);
  process.stderr.write(`${r.message}\n`);
  process.exit(r.exitCode || EXIT_ERROR);
};
process.on('unhandledRejection', fatal);
// `medseg ... | head` closes stdout early: stop quietly instead of an EPIPE error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  fatal(err);
});
process.on('uncaughtException', fatal);

process.exitCode = await runCli(process.argv);
