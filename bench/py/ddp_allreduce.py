"""The PyTorch peer of bench/ddp.ts's all-reduce timing: one rank of a
torch.distributed Gloo group on loopback (the same c10d and Gloo as medseg's
binding), timing all_reduce of fp32 buffers of each size.

    python3 ddp_allreduce.py <rank> <world> <port> '<json: {sizesMB, warmup, repeats}>'

Rank 0 prints {"ms": {size: [..]}} as one JSON line.
"""
import datetime
import json
import sys
import time

import torch
import torch.distributed as dist

rank, world, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
args = json.loads(sys.argv[4])
torch.set_num_threads(1)
dist.init_process_group(
    "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=120)
)
out = {}
for mb in args["sizesMB"]:
    t = torch.ones(round(mb * 2**20 / 4))
    times = []
    for i in range(args["warmup"] + args["repeats"]):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        if i >= args["warmup"]:
            times.append((time.perf_counter() - t0) * 1000)
    out[str(mb)] = times
if rank == 0:
    print(json.dumps({"ms": out}), flush=True)
dist.destroy_process_group()
