/**
 * Benchmark dispatcher: `npm run bench -- <name> [args...]`.
 *
 * The contract for a bench: a file `bench/<name>.ts` that exports
 *
 *   export async function main(args: string[]): Promise<void> | void
 *
 * `args` are the command-line words after the name. A bench times medseg
 * against a peer (PyTorch, nibabel, SciPy, ...) in the same run, prints a
 * short table and writes `bench/results/<name>.json` holding at least the
 * command that made it, the date and the machine (see bench/lib/report.ts).
 * Files under bench/lib and bench/py are helpers, not benches.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function available(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

const [name, ...args] = process.argv.slice(2);
const names = available();
if (!name || !names.includes(name)) {
  console.error(`${name ? `unknown bench '${name}'. ` : ''}usage: npm run bench -- <name> [args]\navailable: ${names.join(', ')}`);
  process.exit(1);
}
const mod = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { main?: (args: string[]) => unknown };
if (typeof mod.main !== 'function') {
  console.error(`bench/${name}.ts does not export main(args): it is a helper, not a bench`);
  process.exit(1);
}
await mod.main(args);
