import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import * as torch from './index.ts';

const addon = fileURLToPath(new URL('../build/Release/torch_native.node', import.meta.url));

// Plain JS worker: loads the addon in its own JS environment and does autograd work.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const t = require(workerData.addon);
const mm = t.lookupOp('aten::matmul', '');
const sum = t.lookupOp('aten::sum', '');
let total = 0;
for (let i = 0; i < 200; i++) {
  const a = t.fromBuffer(new Float32Array([1, 2, 3, 4]), [2, 2], 6);
  t.setRequiresGrad(a, true);
  const s = t.callOp(sum, [t.callOp(mm, [a, a])]);
  t.backward(s, null, false, false);
  total += new Float32Array(t.toBuffer(t.getGrad(a)))[0];
}
parentPort.postMessage(total);
`;

test('the addon works in worker threads alongside the main thread (per-environment state)', async () => {
  const run = () =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(WORKER, { eval: true, workerData: { addon } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const workers = [run(), run()];
  // The main thread keeps using its own handles meanwhile.
  const main = torch.tidy(() => {
    const a = torch.tensor([1, 2, 3, 4], [2, 2]).requiresGrad_();
    a.matmul(a).sum().backward();
    return a.grad!.toArray();
  });
  const totals = await Promise.all(workers);
  // d/dA sum(A A) = 1 1^T A^T + A^T 1 1^T; entry [0,0] = (1+2) + (1+3) = 7
  assert.deepEqual(main, [7, 11, 9, 13]);
  for (const t of totals) assert.equal(t, 7 * 200);
  // Handles made before the workers ran still work.
  torch.tidy(() => assert.equal(torch.ones([3]).sum().item(), 3));
});
