/**
 * Leak probe, run as its own process (node --expose-gc) by scope.test.ts:
 * trains a small conv network with AdamW for WARMUP + STEPS steps and prints
 * JSON with liveTensors() and RSS after the warm-up and at the end. A separate
 * process keeps the measurement free of the test runner's own allocations.
 * The warm-up is a few hundred steps because freed memory is kept for reuse
 * (the caching allocator and glibc's heap): RSS climbs to its working level
 * over the first steps, then stays flat.
 */
import * as torch from '../index.ts';
import { randintT, randnT } from './inputs.ts';

const nn = torch.nn;
const F = torch.F;
const measured = Number(process.argv[2] ?? 500);
const warmup = Number(process.argv[3] ?? 300);
const steps = warmup + measured;

class SmallNet extends nn.Module {
  readonly body = this.module(
    'body',
    new nn.Sequential(
      new nn.Conv2d(1, 8, 3, { padding: 1 }),
      new nn.BatchNorm(8),
      new nn.ReLU(),
      new nn.MaxPool(2),
      new nn.Conv2d(8, 8, 3, { padding: 1 }),
      new nn.GroupNorm(2, 8),
      new nn.LeakyReLU(),
      new nn.Dropout(0.1),
    ),
  );
  readonly up = this.module('up', new nn.ConvTranspose2d(8, 4, 2, { stride: 2 }));
  readonly head = this.module('head', new nn.Conv2d(4, 3, 1));
  forward(x: torch.Tensor): torch.Tensor {
    return this.head.forward(F.relu(this.up.forward(this.body.forward(x))));
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): number {
  for (let i = 0; i < 3; i++) gc?.();
  return process.memoryUsage().rss;
}

torch.manualSeed(0);
const net = new SmallNet();
const opt = new torch.optim.AdamW(net.parameters(), { lr: 1e-3 });
const sched = new torch.optim.CosineWarmupLR(opt, 10, steps);
const x = randnT([4, 1, 32, 32], 1).keep();
const y = randintT([4, 32, 32], 2, 0, 3).keep();

let liveAfterWarmup = 0;
let rssAfterWarmup = 0;
let firstLoss = 0;
let lastLoss = 0;
// Each step yields to the event loop, as a trainer does while awaiting its data
// loader (file reads). A fully synchronous loop of this kind keeps growing RSS
// with liveTensors() flat and little live malloc memory: the small native
// parts of disposed tensors' JS wrappers wait for the event loop, and glibc
// cannot reuse the memory freed around them (malloc_trim(0) returns it). This
// probe measures the supported pattern.
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
for (let step = 0; step < steps; step++) {
  await yieldToEventLoop();
  const loss = torch.tidy(() => {
    const l = F.crossEntropy(net.forward(x), y);
    l.backward();
    return l.item();
  });
  torch.optim.clipGradNorm(net.parameters(), 1.0);
  opt.step();
  opt.zeroGrad();
  sched.step();
  if (step === 0) firstLoss = loss;
  lastLoss = loss;
  if (step === warmup - 1) {
    liveAfterWarmup = torch.liveTensors();
    rssAfterWarmup = settle();
  }
}
const result = {
  steps,
  warmup,
  liveAfterWarmup,
  liveAtEnd: torch.liveTensors(),
  rssAfterWarmup,
  rssAtEnd: settle(),
  firstLoss,
  lastLoss,
  gcExposed: typeof gc === 'function',
};
console.log(JSON.stringify(result));
