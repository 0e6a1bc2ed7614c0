// Worker entry: registers tsx so the TypeScript worker module loads inside the thread.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';
register();
await import(workerData.entry);
