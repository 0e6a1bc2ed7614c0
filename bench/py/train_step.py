"""PyTorch peer of bench/train-step.ts and bench/train-step-3d.ts: the same
U-Net as bench/lib/unet.ts (two conv3x3(no bias)+BN+ReLU per level, max-pool
down, ConvTranspose(k2, s2) up, skip concat, 1x1 head), cross-entropy, AdamW
(lr 1e-3, weight decay 0.01), one step = zero_grad, forward, loss, backward,
optimizer step, loss.item(). A request with "bf16": true runs the forward pass
under torch.autocast('cpu', dtype=torch.bfloat16) and the loss on the logits
cast to fp32, as torch.autocast training does (fp32 weights and optimizer).
The allocator is whatever the process was started with (LD_PRELOAD).

usage: train_step.py --dims 2 --channels 16,32,64,128 --input 8,1,128,128 --threads 2
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer import serve, time_repeated


def block(dims, cin, cout):
    Conv = nn.Conv2d if dims == 2 else nn.Conv3d
    BN = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    return nn.Sequential(
        Conv(cin, cout, 3, padding=1, bias=False), BN(cout), nn.ReLU(),
        Conv(cout, cout, 3, padding=1, bias=False), BN(cout), nn.ReLU(),
    )


class UNet(nn.Module):
    def __init__(self, dims, channels, in_channels=1, classes=2):
        super().__init__()
        ConvT = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        Conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.down = nn.ModuleList(
            block(dims, in_channels if i == 0 else channels[i - 1], c) for i, c in enumerate(channels))
        self.ups = nn.ModuleList(ConvT(channels[i], channels[i - 1], 2, stride=2) for i in range(len(channels) - 1, 0, -1))
        self.up_blocks = nn.ModuleList(
            block(dims, 2 * channels[i - 1], channels[i - 1]) for i in range(len(channels) - 1, 0, -1))
        self.head = Conv(channels[0], classes, 1)
        self.pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)

    def forward(self, x):
        skips = []
        h = x
        for i, b in enumerate(self.down):
            if i > 0:
                h = self.pool(h)
            h = b(h)
            skips.append(h)
        skips.pop()
        for up, b in zip(self.ups, self.up_blocks):
            h = b(torch.cat([up(h), skips.pop()], 1))
        return self.head(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, required=True)
    ap.add_argument("--channels", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    channels = [int(c) for c in a.channels.split(",")]
    shape = [int(s) for s in a.input.split(",")]
    model = UNet(a.dims, channels, in_channels=shape[1]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(shape)
    y = torch.randint(0, 2, [shape[0], *shape[2:]])

    def step(bf16=False):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        return loss.item()

    serve(
        {
            "ready": True,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters()),
            "param_tensors": len(list(model.parameters())),
        },
        {
            "steps": lambda m: {"ms": time_repeated(lambda: step(m.get("bf16", False)), m["n"])},
            "loss": lambda m: {"loss": step(m.get("bf16", False))},
        },
    )


if __name__ == "__main__":
    main()
