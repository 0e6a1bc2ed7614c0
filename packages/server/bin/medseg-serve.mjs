#!/usr/bin/env node
// The medseg-serve command: runs the service compiled to dist/ (`npm run build -w @medseg/server`).
// In a source checkout `npm run serve -- <flags>` runs the TypeScript sources through tsx instead.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('medseg-serve: the server is not built (no dist/): run `npm run serve -- <flags>` from the source checkout\n');
  process.exit(1);
}
await import(main.href);
