#!/usr/bin/env node
// The medseg command: runs the CLI compiled to dist/ (`npm run build`; `npm pack`
// builds it). In a source checkout `npm run medseg -- <command>` runs the
// TypeScript sources through tsx instead, with nothing to build.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'medseg: the CLI is not built (no dist/): run `npm run build -w @medseg/medseg`, or `npm run medseg -- <command>` from the source checkout\n',
  );
  process.exit(1);
}
await import(main.href);
