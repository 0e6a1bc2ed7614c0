// Which tensors are reported to V8 as external memory: only those no tidy()
// scope owns (the GC safety net for forgotten handles), never the short-lived
// ones a scope frees itself. V8's own running total is the observer
// (process.memoryUsage().external does not include addon-reported memory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from './index.ts';
import { native } from './native.ts';

const MB = 2 ** 20;
const SIZE = 64 * MB;
const external = (): number => native.externalMemory();
const big = (): torch.Tensor => torch.zeros([SIZE / 4]);
// V8's external total also moves when the GC frees other objects' memory in
// between (a 64 MB tensor can show as a little less), so 'reported' means most of it.
const REPORTED = 0.9 * SIZE;

test('a tensor made outside any scope is reported, and un-reported on dispose', () => {
  const before = external();
  const t = big();
  assert.ok(external() - before >= REPORTED, `external grew by ${(external() - before) / MB} MB`);
  t.dispose();
  assert.ok(external() - before < SIZE / 2);
});

test('tensors a tidy() scope owns are not reported', () => {
  const before = external();
  let inside = 0;
  torch.tidy(() => {
    big();
    big();
    inside = external() - before;
  });
  assert.ok(inside < SIZE / 2, `external grew by ${inside / MB} MB inside the scope`);
});

test('a tensor kept inside a scope, or returned from the outermost one, is reported', () => {
  const before = external();
  const kept = torch.tidy(() => {
    big().keep();
    return null;
  });
  assert.equal(kept, null);
  const afterKeep = external() - before;
  assert.ok(afterKeep >= REPORTED, `keep(): external grew by ${afterKeep / MB} MB`);
  const returned = torch.tidy(() => torch.tidy(() => big()));
  assert.ok(external() - before >= 2 * REPORTED, 'a returned tensor is reported once it leaves the outermost scope');
  returned.dispose();
});
