"""PyTorch peer for bench/models.ts: the same nnU-Net-style 3D U-Net
(PlainConvUNet: 2x conv-instancenorm-leakyrelu per stage, strided conv down,
transposed conv up, deep-supervision heads) timed for one inference (batch 1,
no grad) and one training step (batch 2, cross-entropy over the heads, Adam).

usage: models_peer.py '{"features": [...], "strides": [[...]], "patch": [...], "classes": 3, "reps": 3}'
prints JSON {"infer_s": ..., "train_step_s": ..., "params": ...}
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def stage(cin, cout, stride):
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01),
        nn.Conv3d(cout, cout, 3, 1, 1, bias=False), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01),
    )


class UNet(nn.Module):
    def __init__(self, feats, strides, classes):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 1
        for f, s in zip(feats, strides):
            self.enc.append(stage(cin, f, s))
            cin = f
        self.ups, self.dec, self.heads = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for s in range(len(feats) - 2, -1, -1):
            self.ups.append(nn.ConvTranspose3d(feats[s + 1], feats[s], strides[s + 1], strides[s + 1]))
            self.dec.append(stage(2 * feats[s], feats[s], 1))
            self.heads.append(nn.Conv3d(feats[s], classes, 1))

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
        outs = []
        for k, s in enumerate(range(len(self.enc) - 2, -1, -1)):
            x = self.dec[k](torch.cat([self.ups[k](x), skips[s]], 1))
            outs.insert(0, self.heads[k](x))
        return outs


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    net = UNet(cfg["features"], cfg["strides"], cfg["classes"])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    patch = cfg["patch"]
    reps = cfg.get("reps", 3)
    x1 = torch.randn(1, 1, *patch)
    x2 = torch.randn(2, 1, *patch)
    y2 = torch.randint(0, cfg["classes"], (2, *patch))

    def infer():
        net.eval()
        with torch.no_grad():
            net(x1)

    def train():
        net.train()
        opt.zero_grad()
        outs = net(x2)
        loss = 0
        for o in outs:
            t = y2 if o.shape[2:] == y2.shape[1:] else F.interpolate(y2[:, None].float(), size=o.shape[2:], mode="nearest")[:, 0].long()
            loss = loss + F.cross_entropy(o, t)
        loss.backward()
        opt.step()

    def timed(fn):
        fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    print(json.dumps({"infer_s": timed(infer), "train_step_s": timed(train), "params": sum(p.numel() for p in net.parameters())}))


main()
