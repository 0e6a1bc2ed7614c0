import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommanderError, InvalidArgumentError } from 'commander';
import { MedsegIoError } from '../io/errors.ts';
import { CliUsageError, describeError, EXIT_BAD_INPUT, EXIT_CODES_HELP, EXIT_ERROR, EXIT_OK, EXIT_USAGE } from './errors.ts';

test('exit codes: usage errors (commander or CliUsageError) 64, bad input 2, anything else 1, help 0', () => {
  assert.deepEqual([EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_USAGE], [0, 1, 2, 64]);
  assert.equal(describeError(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')).exitCode, EXIT_OK);
  assert.equal(describeError(new CommanderError(1, 'commander.unknownCommand', "error: unknown command 'x'")).exitCode, EXIT_USAGE);
  assert.equal(describeError(new InvalidArgumentError('expected a number >= 0')).exitCode, EXIT_USAGE);
  const usage = describeError(new CliUsageError('--names gives 1 name for 2 summaries'), false);
  assert.equal(usage.exitCode, EXIT_USAGE);
  assert.equal(usage.json.error.type, 'usage');

  const io = describeError(new MedsegIoError('NOT_FOUND', 'does not exist', '/data/case1.nii.gz'), false);
  assert.equal(io.exitCode, EXIT_BAD_INPUT);
  assert.match(io.message, /\/data\/case1\.nii\.gz: does not exist\n {2}hint: check the path/);
  assert.deepEqual(io.json.error, { type: 'io', code: 'NOT_FOUND', path: '/data/case1.nii.gz', message: '/data/case1.nii.gz: does not exist' });

  const bug = describeError(new TypeError('x is undefined'), false);
  assert.equal(bug.exitCode, EXIT_ERROR);
  assert.match(bug.message, /unexpected error: x is undefined\n.*MEDSEG_DEBUG=1/);
  assert.doesNotMatch(bug.message, /\n\s+at /);
  assert.match(describeError(new TypeError('x is undefined'), true).message, /\n\s+at /, 'the stack with MEDSEG_DEBUG=1');
});

test('the --help text lists every exit code describeError returns', () => {
  for (const code of [EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_USAGE]) assert.match(EXIT_CODES_HELP, new RegExp(`^ {2}${code} +\\S`, 'm'));
});
