/**
 * Test helper: the value imports reachable from some modules, followed
 * through relative imports (and `@medseg/medseg/<path>` into this package's
 * sources), that a browser could not load: Node built-ins, and npm packages
 * other than the allowed ones. Type-only imports are erased before the page
 * sees a module, so they do not count.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MEDSEG_SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface BrowserImportReport {
  /** Every module reached. */
  modules: string[];
  /** "<module>: <specifier>" for each import a browser could not load. */
  refused: string[];
}

export function browserImports(roots: string[], allowedPackages: string[] = []): BrowserImportReport {
  const pending = [...roots];
  const seen = new Set<string>();
  const refused: string[] = [];
  while (pending.length) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\sfrom\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) pending.push(resolve(dirname(file), spec));
      else if (spec.startsWith('@medseg/medseg/')) pending.push(join(MEDSEG_SRC, `${spec.slice('@medseg/medseg/'.length)}.ts`));
      else if (!spec.startsWith('node:') && allowedPackages.some((p) => spec === p || spec.startsWith(`${p}/`))) continue;
      else refused.push(`${file}: ${spec}`);
    }
  }
  return { modules: [...seen], refused };
}
