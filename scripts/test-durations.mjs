// A node:test reporter that adds up the top-level tests' time per test file
// and prints the slowest files at the end of a run, so the suite's budget
// (15 minutes) shows where it goes.
import { relative } from 'node:path';

export default async function* testDurations(source) {
  const perFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const file = relative(process.cwd(), event.data.file);
      perFile.set(file, (perFile.get(file) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...perFile].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, ms]) => s + ms, 0);
  yield `\ntest time by file: ${(total / 1000).toFixed(0)} s in ${rows.length} files; the slowest:\n`;
  for (const [file, ms] of rows.slice(0, 25)) yield `${(ms / 1000).toFixed(1).padStart(8)} s  ${file}\n`;
}
