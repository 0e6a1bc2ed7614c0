"""PyTorch side of bench/lib/profile-step.ts: the step split into parts.
usage: profile_step.py [2|3] [steps] [threads]"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from train_step import UNet

dims = int(sys.argv[1]) if len(sys.argv) > 1 else 2
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
channels, shape = ([16, 32, 64, 128], [8, 1, 128, 128]) if dims == 2 else ([8, 16, 32], [2, 1, 48, 48, 48])
torch.manual_seed(0)
model = UNet(dims, channels).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
x = torch.randn(shape)
y = torch.randint(0, 2, [shape[0], *shape[2:]])
names = ["zero", "forward", "loss", "backward", "optimizer", "item"]
parts = {n: [] for n in names + ["total"]}
for s in range(steps + 2):
    t = [time.perf_counter()]
    opt.zero_grad(set_to_none=True); t.append(time.perf_counter())
    out = model(x); t.append(time.perf_counter())
    loss = F.cross_entropy(out, y); t.append(time.perf_counter())
    loss.backward(); t.append(time.perf_counter())
    opt.step(); t.append(time.perf_counter())
    loss.item(); t.append(time.perf_counter())
    del out, loss
    t.append(time.perf_counter())
    if s < 2:
        continue
    for i, n in enumerate(names):
        parts[n].append((t[i + 1] - t[i]) * 1000)
    parts["total"].append((t[-1] - t[0]) * 1000)
print(f"pytorch threads={torch.get_num_threads()}", {k: round(statistics.median(v), 1) for k, v in parts.items()})
