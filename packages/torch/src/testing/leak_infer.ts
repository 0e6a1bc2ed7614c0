/**
 * Inference leak probe, run as its own process (node --expose-gc) by
 * scope.test.ts: eval-mode forwards of a small 3D conv network on large
 * inputs of three alternating sizes (as a sliding window over cases of
 * different shapes does), printing JSON with RSS after a warm-up and at the
 * end, and the caching allocator's statistics. Under glibc's dynamic mmap
 * threshold this pattern fragments the heap and grows RSS with every forward;
 * the caching allocator must keep it flat while serving the buffers from its
 * cache.
 */
import * as torch from '../index.ts';
import { randnT } from './inputs.ts';

const nn = torch.nn;
const forwards = Number(process.argv[2] ?? 150);
const warmup = Number(process.argv[3] ?? 30);

const net = new nn.Sequential(
  new nn.Conv3d(1, 16, 3, { padding: 1 }),
  new nn.InstanceNorm(16),
  new nn.LeakyReLU(),
  new nn.Conv3d(16, 16, 3, { padding: 1 }),
  new nn.LeakyReLU(),
  new nn.Conv3d(16, 3, 1),
);
net.eval();
torch.manualSeed(0);
const inputs = [
  [1, 1, 40, 56, 40],
  [1, 1, 48, 64, 48],
  [1, 1, 32, 72, 40],
].map((s, i) => randnT(s, i + 1).keep());

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): number {
  for (let i = 0; i < 3; i++) gc?.();
  return process.memoryUsage().rss;
}

let rssAfterWarmup = 0;
let checksum = 0;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
for (let i = 0; i < warmup + forwards; i++) {
  await yieldToEventLoop();
  checksum += torch.noGrad(() =>
    torch.tidy(() =>
      torch.F.softmax(net.forward(inputs[i % inputs.length]!), 1)
        .argmax(1)
        .sum()
        .item(),
    ),
  );
  if (i === warmup - 1) rssAfterWarmup = settle();
}
console.log(
  JSON.stringify({
    forwards,
    warmup,
    rssAfterWarmup,
    rssAtEnd: settle(),
    allocator: torch.allocatorStats(),
    liveTensors: torch.liveTensors(),
    checksum,
    gcExposed: typeof gc === 'function',
  }),
);
