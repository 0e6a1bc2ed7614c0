/**
 * The page's modules, followed into the medseg library, import nothing a
 * browser cannot load: no Node built-in, and of npm only the page's own
 * dependencies and the browser-capable libraries medseg's DICOM code uses
 * (dcmjs's data dictionary, iconv-lite's character sets).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { browserImports } from '@medseg/medseg/testing/browser-imports';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

test("the page's value imports, through the library, reach no Node module and only browser-capable packages", () => {
  const roots = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => join(SRC, f));
  const { modules, refused } = browserImports(roots, ['@niivue/niivue', '@niivue/dcm2niix', 'fflate', 'onnxruntime-web', 'dcmjs', 'iconv-lite']);
  assert.ok(
    modules.some((m) => m.endsWith('seg-build.ts')),
    'the SEG builder is among the modules checked',
  );
  assert.deepEqual(refused, []);
});
