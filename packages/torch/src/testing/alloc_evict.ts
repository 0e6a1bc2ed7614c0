/**
 * Allocator eviction probe, run as its own process by scope.test.ts with a
 * small cache cap (MEDSEG_ALLOC_CACHE_MB=16): fill the cache with blocks of
 * one size, then switch to a different size, as a process does when it
 * moves from timing plan candidates to training to inference. Prints the
 * allocator's statistics for the second phase as JSON.
 */
import * as torch from '../index.ts';

// Phase 1: four live 4 MiB tensors at once, released together: 16 MiB of one size class cached.
torch.tidy(() => {
  const ts = Array.from({ length: 4 }, () => torch.ones([1024, 1024]));
  return ts.reduce((a, t) => a + t.sum().item(), 0);
});
const full = torch.allocatorStats();
// Phase 2: a 5 MiB size, allocated and released 20 times.
let sum = 0;
for (let i = 0; i < 20; i++) sum += torch.tidy(() => torch.full([1280, 1024], 1).sum().item());
const after = torch.allocatorStats();
console.log(
  JSON.stringify({
    cachedAfterFill: full.cachedBytes,
    hits: after.hits - full.hits,
    misses: after.misses - full.misses,
    evictions: after.evictions - full.evictions,
    cachedBytes: after.cachedBytes,
    capBytes: after.capBytes,
    sum,
  }),
);
