/**
 * The `medseg` commander program and the one function that runs it.
 *
 * Commands live in ./commands/<name>.ts and export `register(program)`. They
 * are listed in COMMANDS; adding one is adding its name. A listed command
 * whose file does not exist yet is skipped (noted with MEDSEG_DEBUG=1); one
 * whose module fails to load (say, the native engine is not built) is still
 * listed and says why when run, so `evaluate` keeps working without torch.
 * Command modules should import heavy dependencies inside their actions.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { describeError, EXIT_ERROR, EXIT_OK } from './errors.ts';

export const COMMANDS = [
  'evaluate',
  'report',
  'plan',
  'preprocess',
  'train',
  'predict',
  'demo',
  'import',
] as const;

export type CommandModule = { register: (program: Command) => void };

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function createProgram(): Command {
  const program = new Command('medseg');
  program
    .description('Medical image segmentation: plan, train, predict, evaluate and report')
    .version(packageVersion(), '-V, --version', 'print the medseg version')
    .option('--json', 'machine-readable output: the result as one JSON object on stdout (logs stay on stderr)')
    .helpCommand(true)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride() // throw CommanderError instead of exiting, so runCli owns the exit code
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  return program;
}

/** Whether `err` says commands/<name>.ts itself is absent (not a module it imports). */
export function isMissingModule(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string; url?: string } | null;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return false;
  const missing = e.url ?? /Cannot find module '([^']+)'/.exec(String(e.message))?.[1] ?? '';
  return missing.replace(/\\/g, '/').endsWith(`/commands/${name}.ts`);
}

/** Register every command of `names` that exists (see the module comment). */
export async function registerCommands(program: Command, names: readonly string[] = COMMANDS): Promise<void> {
  for (const name of names) {
    let mod: CommandModule;
    try {
      mod = (await import(`./commands/${name}.ts`)) as CommandModule;
    } catch (err) {
      if (isMissingModule(err, name)) {
        if (process.env.MEDSEG_DEBUG === '1') process.stderr.write(`medseg: command "${name}" is not available yet (no commands/${name}.ts)\n`);
        continue;
      }
      const reason = err instanceof Error ? err.message : String(err);
      program
        .command(name)
        .description(`(unavailable: ${reason.split('\n')[0]})`)
        .allowUnknownOption()
        .argument('[args...]')
        .action(() => {
          throw new Error(`the "${name}" command could not be loaded: ${reason}`);
        });
      continue;
    }
    mod.register(program);
  }
}

/** Parse argv (process.argv form), run the command, return the exit code. Never throws. */
export async function runCli(argv: readonly string[] = process.argv): Promise<number> {
  const json = argv.includes('--json');
  try {
    const program = createProgram();
    await registerCommands(program);
    await program.parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    const report = describeError(err);
    if (report.message) process.stderr.write(`${report.message}\n`);
    if (json && report.exitCode !== EXIT_OK) process.stdout.write(`${JSON.stringify(report.json)}\n`);
    return report.exitCode ?? EXIT_ERROR;
  }
}
