import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProgram, isMissingModule, registerCommands } from './program.ts';

test('a listed command without a file is skipped; the others register', async () => {
  const program = createProgram();
  await registerCommands(program, ['evaluate', 'no-such-command-yet', 'report']);
  assert.deepEqual(program.commands.map((c) => c.name()), ['evaluate', 'report']);
});

test('only a missing command file counts as "not there yet", not a missing import inside it', () => {
  const missingFile = Object.assign(new Error("Cannot find module '/x/cli/commands/train.ts' imported from /x/cli/program.ts"), { code: 'ERR_MODULE_NOT_FOUND', url: 'file:///x/cli/commands/train.ts' });
  const missingDep = Object.assign(new Error("Cannot find module '/x/train/loop.ts' imported from /x/cli/commands/train.ts"), { code: 'ERR_MODULE_NOT_FOUND', url: 'file:///x/train/loop.ts' });
  const noUrl = Object.assign(new Error("Cannot find module '/x/train/loop.ts' imported from /x/cli/commands/train.ts"), { code: 'ERR_MODULE_NOT_FOUND' });
  assert.equal(isMissingModule(missingFile, 'train'), true);
  assert.equal(isMissingModule(missingDep, 'train'), false);
  assert.equal(isMissingModule(noUrl, 'train'), false);
  assert.equal(isMissingModule(new SyntaxError('x'), 'train'), false);
});
