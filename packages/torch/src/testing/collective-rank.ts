/**
 * One rank of distributed.test.ts, run as its own process:
 *   collective-rank.ts <scenario> <rank> <worldSize> <port>
 * 'sums': all-reduce, broadcast and barrier on rank-dependent values, while
 * counting event-loop ticks (a collective must not block the loop).
 * 'kill': the last rank SIGKILLs itself after one all-reduce; the others keep
 * all-reducing and report the error that ends them and how long it took.
 * 'stop': the same with SIGSTOP (a hung peer, in a group with a 2 s timeout);
 * rank 0, which learnt the stopped rank's pid by an all-reduce, SIGKILLs it
 * once it has reported.
 * Prints one JSON line with what it saw.
 */
import * as torch from '../index.ts';

const [scenario, rankArg, worldArg, portArg] = process.argv.slice(2);
const rank = Number(rankArg);
const worldSize = Number(worldArg);
const group = await torch.ProcessGroup.join({
  masterAddr: '127.0.0.1',
  masterPort: Number(portArg),
  rank,
  worldSize,
  timeoutMs: scenario === 'stop' ? 2000 : 10_000,
});

if (scenario === 'sums') {
  const a = torch.tensor([rank + 1, 10 * (rank + 1), -rank], [3]);
  const b = torch.tensor([rank, 2 * rank, 0.5, rank * rank], [2, 2]);
  await group.allReduceSum([a, b]);
  const big = torch.full([1 << 20], rank + 1);
  await group.allReduceSum([big]);
  const bigSum = big.sum().item();
  const c = torch.tensor([rank + 100, rank + 200], [2]);
  const d = torch.tensor([rank], [1]);
  await group.broadcast([c, d], worldSize - 1);
  // Rank 0 waits at the barrier while the others sleep: its event loop ticks meanwhile.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  if (rank !== 0) await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  await group.barrier();
  const barrierMs = Date.now() - t0;
  clearInterval(timer);
  await group.destroy();
  let afterDestroy = '';
  try {
    await group.barrier();
  } catch (e) {
    afterDestroy = (e as torch.DistributedError).code;
  }
  process.stdout.write(`${JSON.stringify({ rank, a: a.toArray(), b: b.toArray(), bigSum, c: c.toArray(), d: d.toArray(), ticks, barrierMs, afterDestroy })}\n`);
} else if (scenario === 'kill' || scenario === 'stop') {
  const x = torch.ones([1000]);
  await group.allReduceSum([x]);
  const pids = torch.tensor([rank === worldSize - 1 ? process.pid : 0], [1], { dtype: 'float64' });
  await group.allReduceSum([pids]);
  if (rank === worldSize - 1) process.kill(process.pid, scenario === 'kill' ? 'SIGKILL' : 'SIGSTOP');
  const t0 = Date.now();
  let error: { code: string; message: string; ms: number } | null = null;
  for (let i = 0; i < 10_000 && !error; i++) {
    try {
      await group.allReduceSum([x]);
    } catch (e) {
      const de = e as torch.DistributedError;
      error = { code: de.code, message: de.message, ms: Date.now() - t0 };
    }
  }
  process.stdout.write(`${JSON.stringify({ rank, error })}\n`);
  if (scenario === 'stop' && rank === 0) process.kill(pids.item(), 'SIGKILL');
  await group.destroy();
}
