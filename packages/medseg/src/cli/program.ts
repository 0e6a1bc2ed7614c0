/**
 * The `medseg` commander program and the one function that runs it.
 *
 * Every command lives in ./commands/<name>.ts, exports `register(program)` and
 * is listed in COMMANDS. Command modules import heavy dependencies (the
 * native engine above all) inside their actions, so that loading the program
 * costs little and the commands that need no engine, like `evaluate`, work
 * where libtorch is not installed (program.test.ts checks the list and that).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import * as classify from './commands/classify.ts';
import * as compress from './commands/compress.ts';
import * as convert from './commands/convert.ts';
import * as deidentify from './commands/deidentify.ts';
import * as demo from './commands/demo.ts';
import * as enhance from './commands/enhance.ts';
import * as evaluate from './commands/evaluate.ts';
import * as exportCommand from './commands/export.ts';
import * as explain from './commands/explain.ts';
import * as federate from './commands/federate.ts';
import * as finetune from './commands/finetune.ts';
import * as importCommand from './commands/import.ts';
import * as plan from './commands/plan.ts';
import * as predict from './commands/predict.ts';
import * as pretrain from './commands/pretrain.ts';
import * as registerCommand from './commands/register.ts';
import * as registerTrain from './commands/register-train.ts';
import * as preprocess from './commands/preprocess.ts';
import * as report from './commands/report.ts';
import * as synthesize from './commands/synthesize.ts';
import * as train from './commands/train.ts';
import { describeError, EXIT_CODES_HELP, EXIT_OK } from './errors.ts';

export type CommandModule = { register: (program: Command) => void };

/** The commands in the order `medseg --help` lists them. */
export const COMMANDS: readonly CommandModule[] = [
  evaluate,
  report,
  plan,
  preprocess,
  pretrain,
  synthesize,
  train,
  finetune,
  federate,
  predict,
  explain,
  classify,
  enhance,
  exportCommand,
  compress,
  demo,
  importCommand,
  convert,
  deidentify,
  registerCommand,
  registerTrain,
];

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The program with every command of COMMANDS registered. */
export function createProgram(): Command {
  const program = new Command('medseg');
  program
    .description('Medical image segmentation: plan, train, predict, evaluate and report')
    .version(packageVersion(), '-V, --version', 'print the medseg version')
    .option('--json', 'machine-readable output: the result as one JSON object on stdout (logs stay on stderr)')
    .helpCommand(true)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride() // throw CommanderError instead of exiting, so runCli owns the exit code
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .addHelpText('after', `\n${EXIT_CODES_HELP}`);
  for (const command of COMMANDS) command.register(program);
  return program;
}

/** Parse argv (process.argv form), run the command, return the exit code. Never throws. */
export async function runCli(argv: readonly string[] = process.argv): Promise<number> {
  const json = argv.includes('--json');
  try {
    await createProgram().parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    const report = describeError(err);
    if (report.message) process.stderr.write(`${report.message}\n`);
    if (json && report.exitCode !== EXIT_OK) process.stdout.write(`${JSON.stringify(report.json)}\n`);
    return report.exitCode;
  }
}
