#!/usr/bin/env node
// The medseg command: the library is TypeScript run through tsx, so register
// tsx's ESM loader in this process and then load the CLI entry point.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/cli/main.ts', import.meta.url).href);
