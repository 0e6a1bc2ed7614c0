/**
 * Computation never depends on presentation: no file of eval/ outside
 * eval/report/ (tests included) imports anything from eval/report/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const EVAL = dirname(fileURLToPath(import.meta.url));
const REPORT = join(EVAL, 'report');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return p === REPORT ? [] : tsFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of static imports, re-exports and dynamic imports. */
function relativeImports(source: string): string[] {
  const specs: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) specs.push(m[1]!);
  return specs;
}

test('relativeImports finds static, side-effect, re-export and dynamic imports', () => {
  const src = `import { a } from './x.ts';\nimport type { B } from "../y.ts";\nexport { c } from './sub/z.ts';\nimport './side.ts';\nconst m = await import('./sub/w.ts');\nimport fs from 'node:fs';`;
  assert.deepEqual(relativeImports(src), ['./x.ts', '../y.ts', './sub/z.ts', './side.ts', './sub/w.ts']);
});

test('no eval/ file outside eval/report/ imports from eval/report/', () => {
  const files = tsFiles(EVAL);
  assert.ok(files.length > 20, `expected the eval sources, found ${files.length} files`);
  const offences: string[] = [];
  for (const f of files) {
    for (const spec of relativeImports(readFileSync(f, 'utf8'))) {
      const target = resolve(dirname(f), spec);
      if (target === REPORT || target.startsWith(REPORT + sep)) offences.push(`${relative(EVAL, f)} imports ${spec}`);
    }
  }
  assert.deepEqual(offences, [], 'computation must not depend on reporting');
});
