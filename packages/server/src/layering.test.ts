/**
 * packages/server sits above the library: it imports @medseg/medseg's
 * modules (never its CLI, never another package's files by relative path),
 * holds no segmentation code of its own, and its production files never
 * import test-only code.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = dirname(fileURLToPath(import.meta.url));

/** Specifiers of static imports, re-exports and dynamic import() calls. */
function importSpecifiers(text: string): string[] {
  const res = [/\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"`]([^'"`]+)['"`]/g];
  return res.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!));
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.ts') ? [p] : [];
  });
}

test('the server imports the library downward only, and production code no test code', () => {
  const bad: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const testOnly = rel.endsWith('.test.ts') || rel.startsWith('testing/');
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('@medseg/medseg/cli') || spec === '@medseg/medseg/cli') bad.push(`${rel} imports the CLI (${spec})`);
      if (spec.startsWith('.') && relative(SRC, resolve(dirname(file), spec)).startsWith('..')) bad.push(`${rel} reaches outside packages/server (${spec})`);
      if (!testOnly && (/^@medseg\/medseg\/testing\//.test(spec) || spec.includes('/testing/') || spec.endsWith('.test.ts') || spec.endsWith('.test'))) {
        bad.push(`${rel} imports test-only code (${spec})`);
      }
    }
  }
  assert.deepEqual(bad, []);
});
