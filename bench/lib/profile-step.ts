/**
 * Where one medseg training step spends its time (forward, loss, backward,
 * optimizer), for chasing a gap to PyTorch:
 *   node --import tsx bench/lib/profile-step.ts [2|3] [steps]
 * bench/py/profile_step.py prints the same split for PyTorch.
 */
import { performance } from 'node:perf_hooks';
import * as torch from '@medseg/torch';
import { median } from './stats.ts';
import { BenchUNet } from './unet.ts';

const dims = Number(process.argv[2] ?? 2) as 2 | 3;
const steps = Number(process.argv[3] ?? 8);
const cfg = dims === 2 ? { channels: [16, 32, 64, 128], input: [8, 1, 128, 128] } : { channels: [8, 16, 32], input: [2, 1, 48, 48, 48] };
torch.manualSeed(0);
const model = new BenchUNet(dims, cfg.channels).train();
const opt = new torch.optim.AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.01 });
const x = torch.randn(cfg.input).keep();
const y = torch.randint(0, 2, [cfg.input[0]!, ...cfg.input.slice(2)], { dtype: 'int64' }).keep();
const parts: Record<string, number[]> = { zero: [], forward: [], loss: [], backward: [], optimizer: [], item: [], total: [] };
for (let s = 0; s < steps + 2; s++) {
  const t: number[] = [performance.now()];
  torch.tidy(() => {
    opt.zeroGrad();
    t.push(performance.now());
    const out = model.forward(x);
    t.push(performance.now());
    const loss = torch.F.crossEntropy(out, y);
    t.push(performance.now());
    loss.backward();
    t.push(performance.now());
    opt.step();
    t.push(performance.now());
    loss.item();
    t.push(performance.now());
  });
  t.push(performance.now());
  if (s < 2) continue;
  const names = ['zero', 'forward', 'loss', 'backward', 'optimizer', 'item'];
  names.forEach((n, i) => parts[n]!.push(t[i + 1]! - t[i]!));
  parts.total!.push(t.at(-1)! - t[0]!);
}
console.log(`medseg threads=${torch.getNumThreads()}`, Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Number(median(v).toFixed(1))])));
