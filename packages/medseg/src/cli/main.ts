/**
 * Entry point of the `medseg` command (npm run medseg, bin/medseg.mjs).
 * All logic is in program.ts; this file only sets the exit code and makes
 * sure no error ever escapes as an unhandled-rejection trace.
 */
import { describeError } from './errors.ts';
import { runCli } from './program.ts';

const fatal = (err: unknown) => {
  const r = describeError(err);
  process.stderr.write(`${r.message}\n`);
  process.exit(r.exitCode || 1);
};
process.on('unhandledRejection', fatal);
// `medseg ... | head` closes stdout early: stop quietly instead of an EPIPE error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  fatal(err);
});
process.on('uncaughtException', fatal);

process.exitCode = await runCli(process.argv);
