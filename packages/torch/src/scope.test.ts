/**
 * Deterministic freeing: tidy() frees all but what it returns, keep() survives
 * scopes, dispose() is idempotent, liveTensors() counts native handles. The
 * training leak test runs in its own process (testing/leak_train.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from './index.ts';

const live = () => torch.liveTensors();

test('scope: liveTensors counts every handle, views included, and dispose gives them back', () => {
  const base = live();
  const a = torch.ones([3, 4]);
  const v = a.slice(0, 1); // a view is its own handle
  const b = a.add(1);
  assert.equal(live(), base + 3);
  a.dispose();
  // The view keeps the storage alive and still reads correct values.
  assert.deepEqual(v.toArray(), [1, 1, 1, 1, 1, 1, 1, 1]);
  v.dispose();
  b.dispose();
  assert.equal(live(), base);
});

test('scope: tidy frees everything created inside except what it returns (tensor, array, object, Map)', () => {
  const base = live();
  const t = torch.tidy(() => {
    const a = torch.ones([2]);
    const b = a.mul(3);
    a.add(b).exp();
    return b;
  });
  assert.equal(live(), base + 1);
  assert.deepEqual(t.toArray(), [3, 3]);
  const r = torch.tidy(() => {
    const x = torch.arange(4);
    return { pair: [x.add(1), x.mul(2)], map: new Map([['m', x.neg()]]), n: 5 };
  });
  assert.equal(live(), base + 4);
  assert.equal(r.n, 5);
  assert.deepEqual(r.map.get('m')!.toArray(), [0, -1, -2, -3]);
  torch.dispose([t, r]);
  assert.equal(live(), base);
});

test('scope: nested tidy moves returned tensors to the parent scope, which frees them unless returned', () => {
  const base = live();
  let inner: torch.Tensor | undefined;
  const outer = torch.tidy(() => {
    inner = torch.tidy(() => torch.ones([2]).mul(2));
    const kept = torch.tidy(() => torch.zeros([3]));
    assert.equal(inner.disposed, false);
    return kept;
  });
  assert.equal(inner!.disposed, true, 'the inner result was not returned by the outer scope');
  assert.equal(outer.disposed, false);
  outer.dispose();
  assert.equal(live(), base);
});

test('scope: keep() survives any number of scopes; unkeep() hands it back to the next scope', () => {
  const base = live();
  let k!: torch.Tensor;
  torch.tidy(() => {
    torch.tidy(() => {
      k = torch.ones([2]).keep();
    });
  });
  assert.equal(k.disposed, false);
  assert.equal(live(), base + 1);
  torch.tidy(() => {
    torch.unkeep(k);
  });
  assert.equal(k.disposed, true);
  assert.equal(live(), base);
});

test('scope: dispose() is idempotent and dispose(value) frees nested structures once', () => {
  const base = live();
  const a = torch.ones([2]);
  a.dispose();
  a.dispose();
  const b = torch.ones([2]);
  const c = torch.ones([2]);
  torch.dispose({ list: [b, [c, b]], nothing: null, num: 3 });
  torch.dispose([b, c]);
  assert.ok(b.disposed && c.disposed);
  assert.equal(live(), base);
  {
    using d = torch.ones([2]);
    assert.equal(live(), base + 1);
    assert.equal(d.disposed, false);
  }
  assert.equal(live(), base, '`using` disposes at the end of the block');
});

test('scope: an exception inside tidy frees the scope; an async function is refused', () => {
  const base = live();
  assert.throws(() =>
    torch.tidy(() => {
      torch.ones([4]);
      throw new Error('fail');
    }),
  );
  assert.equal(live(), base);
  assert.throws(() => torch.tidy((async () => torch.ones([1])) as unknown as () => torch.Tensor), /synchronous/);
});

test('scope: in-place ops return the same handle; module parameters survive tidy; grads are fresh handles', () => {
  const base = live();
  const lin = new torch.nn.Linear(3, 2);
  const afterModule = live();
  torch.tidy(() => {
    const x = torch.ones([4, 3]);
    assert.equal(x.add_(1), x);
    assert.equal(x.mul_(2).clamp_(0, 3), x);
    lin.forward(x).sum().backward();
    const g1 = lin.weight.grad!;
    const g2 = lin.weight.grad!;
    assert.notEqual(g1, g2);
    assert.ok(g1.equal(g2));
  });
  assert.equal(live(), afterModule, 'scope freed intermediates and grad handles');
  assert.equal(lin.weight.disposed, false);
  lin.zeroGrad();
  lin.dispose();
  assert.equal(live(), base);
});

test('scope: 500 AdamW training steps of a small conv net (after 300 warm-up steps) keep liveTensors flat and RSS growth under 5%', () => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'testing', 'leak_train.ts');
  // Own process: --expose-gc for settled RSS readings, and one libtorch thread
  // (tiny ops on a shared 2-core machine are slower with the thread pool).
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, '500', '300'], {
    env: { ...process.env, MEDSEG_THREADS: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as {
    liveAfterWarmup: number;
    liveAtEnd: number;
    rssAfterWarmup: number;
    rssAtEnd: number;
    firstLoss: number;
    lastLoss: number;
    gcExposed: boolean;
  };
  assert.ok(r.gcExposed);
  assert.equal(r.liveAtEnd, r.liveAfterWarmup, 'native tensor handles are flat across training steps');
  const growth = (r.rssAtEnd - r.rssAfterWarmup) / r.rssAfterWarmup;
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% (${r.rssAfterWarmup >> 20} -> ${r.rssAtEnd >> 20} MB)`);
  assert.ok(r.lastLoss < r.firstLoss, 'the network trained');
});

test('scope: 150 eval-mode 3D forwards of three alternating sizes keep RSS flat, served from the caching allocator', () => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'testing', 'leak_infer.ts');
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, '150', '30'], { encoding: 'utf8', timeout: 120_000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as {
    rssAfterWarmup: number;
    rssAtEnd: number;
    allocator: { cachedBytes: number; hits: number; misses: number; evictions: number; capBytes: number };
    liveTensors: number;
    gcExposed: boolean;
  };
  assert.ok(r.gcExposed);
  const growth = (r.rssAtEnd - r.rssAfterWarmup) / r.rssAfterWarmup;
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% (${r.rssAfterWarmup >> 20} -> ${r.rssAtEnd >> 20} MB)`);
  // The buffers of a repeated forward come back from the cache, not from fresh (page-faulting) mappings.
  assert.ok(r.allocator.hits > 20 * r.allocator.misses, `allocator hits ${r.allocator.hits}, misses ${r.allocator.misses}`);
  assert.ok(r.allocator.cachedBytes <= r.allocator.capBytes, 'the cache stays under its cap');
});

test('allocator: a full cache makes room for a new size class (least recently used evicted) instead of unmapping it on every release', () => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'testing', 'alloc_evict.ts');
  const out = execFileSync(process.execPath, ['--import', 'tsx', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, MEDSEG_ALLOC_CACHE_MB: '16' },
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as {
    cachedAfterFill: number;
    hits: number;
    misses: number;
    evictions: number;
    cachedBytes: number;
    capBytes: number;
    sum: number;
  };
  assert.equal(r.capBytes, 16 * 2 ** 20, 'MEDSEG_ALLOC_CACHE_MB sets the cap');
  assert.equal(r.cachedAfterFill, 16 * 2 ** 20, 'phase 1 filled the 16 MiB cache');
  assert.equal(r.sum, 20 * 1280 * 1024);
  // The first 5 MiB request misses; its release evicts two 4 MiB blocks; the other 19 are hits.
  assert.equal(r.misses, 1, `misses ${r.misses}`);
  assert.equal(r.hits, 19, `hits ${r.hits}`);
  assert.equal(r.evictions, 2);
  assert.ok(r.cachedBytes <= 16 * 2 ** 20);
});

const capFromEnvironment = process.env.MEDSEG_ALLOC_CACHE_MB ? 'MEDSEG_ALLOC_CACHE_MB sets the cap here' : false;

test('allocator: the default cap is a quarter of the usable memory (RAM or a lower cgroup limit), at least 1 GiB', { skip: capFromEnvironment }, () => {
  let usable = totalmem();
  try {
    const limit = Number(readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim());
    if (Number.isFinite(limit) && limit > 0) usable = Math.min(usable, limit);
  } catch {
    // no cgroup v2 limit file: RAM alone
  }
  const expected = Math.max(2 ** 30, usable / 4);
  const cap = torch.allocatorStats().capBytes;
  // sysconf's page count and os.totalmem() can differ by the kernel's reserved pages.
  assert.ok(Math.abs(cap - expected) / expected < 0.02, `cap ${cap} B, expected about ${expected} B`);
});

test('allocator: emptyAllocatorCache returns cached blocks; tensors reusing a cached block read what was written', () => {
  torch.tidy(() => torch.ones([1024, 1024]).sum()); // 4 MiB: a large block, cached on release
  assert.ok(torch.allocatorStats().cachedBytes >= 4 * 2 ** 20);
  const t = torch.tidy(() => torch.full([1024, 1024], 3)); // reuses the cached block
  assert.equal(
    torch.tidy(() => t.sum().item()),
    3 * 1024 * 1024,
  );
  t.dispose();
  torch.emptyAllocatorCache();
  assert.equal(torch.allocatorStats().cachedBytes, 0);
});
