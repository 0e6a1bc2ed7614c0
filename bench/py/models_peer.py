"""PyTorch peer of medseg's networks: nnU-Net's U-Net (PlainConvUNet: 2x
conv-norm-leakyrelu per stage, strided conv down, transposed conv up,
deep-supervision heads) and HybridNet (the U-Net plus a transformer stage at
the coarsest level, CBAM and an additive attention gate on every skip),
written with torch.nn under medseg's state-dict names, so a medseg weights
file (safetensors) loads into them with load_state_dict(strict=True) and the
same network runs in PyTorch eager.

usage:
  models_peer.py '{"features": [...], "strides": [[...]], "patch": [...], "classes": 3, "reps": 3}'
      (bench/models.ts) a randomly initialised U-Net timed for one inference
      (batch 1, no grad) and one training step (batch 2, cross-entropy over
      the heads, Adam); prints JSON {"infer_s": ..., "train_step_s": ..., "params": ...}
  models_peer.py --serve
      (bench/deploy.ts) peer.py's line protocol: load a medseg network config
      and weights file, time network passes, write the logits of an input.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "medseg", "src", "models"))
from models_ref import load as load_safetensors  # noqa: E402
from peer import serve, time_repeated  # noqa: E402


def conv_nd(dims):
    return nn.Conv3d if dims == 3 else nn.Conv2d


def make_norm(kind, dims, c):
    if kind == "instance":
        return (nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d)(c, affine=True, eps=1e-5)
    if kind == "batch":
        return (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(c)
    if kind == "group":
        g = min(8, c)
        while c % g:
            g -= 1
        return nn.GroupNorm(g, c)
    raise ValueError(f"unknown norm {kind}")


class ConvNormAct(nn.Module):
    def __init__(self, dims, cin, cout, kernel, stride, norm):
        super().__init__()
        self.conv = conv_nd(dims)(cin, cout, kernel, stride, [k // 2 for k in kernel], bias=False)
        self.norm = make_norm(norm, dims, cout)
        self.nonlin = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.nonlin(self.norm(self.conv(x)))


class StackedConvs(nn.Module):
    def __init__(self, dims, cin, cout, kernel, stride, norm, n=2):
        super().__init__()
        self.convs = nn.Sequential(*[ConvNormAct(dims, cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, norm) for i in range(n)])

    def forward(self, x):
        return self.convs(x)


class Upsampler(nn.Module):
    def __init__(self, dims, cin, cout, stride, mode):
        super().__init__()
        self.mode = mode
        if mode == "interpolate":
            self.op = conv_nd(dims)(cin, cout, 1)
        else:
            self.op = (nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d)(cin, cout, stride, stride)

    def forward(self, x, size):
        if self.mode == "interpolate":
            if list(x.shape[2:]) != list(size):
                x = F.interpolate(x, size=list(size), mode="trilinear" if x.dim() == 5 else "bilinear", align_corners=False)
        return self.op(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: x + MHA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, round(dim * 4))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TransformerStage(nn.Module):
    """1x1 projection to tokens, depthwise-conv position encoding, blocks, LayerNorm, projection back, residual."""

    def __init__(self, dims, channels, depth, heads):
        super().__init__()
        Conv = conv_nd(dims)
        self.proj_in = Conv(channels, channels, 1)
        self.pos_conv = Conv(channels, channels, 3, padding=1, groups=channels)
        self.blocks = nn.ModuleList([TransformerBlock(channels, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(channels)
        self.proj_out = Conv(channels, channels, 1)

    def forward(self, x):
        n, c, *spatial = x.shape
        h = self.proj_in(x)
        h = h + self.pos_conv(h)
        t = h.flatten(2).transpose(1, 2)
        for b in self.blocks:
            t = b(t)
        return x + self.proj_out(self.norm(t).transpose(1, 2).reshape(n, c, *spatial))


class CBAM(nn.Module):
    def __init__(self, dims, channels, reduction):
        super().__init__()
        Conv = conv_nd(dims)
        hidden = max(min(channels, 8), channels // reduction)
        self.fc1 = Conv(channels, hidden, 1)
        self.fc2 = Conv(hidden, channels, 1)
        self.spatial = Conv(2, 1, 7, padding=3)

    def forward(self, x):
        axes = list(range(2, x.dim()))
        mlp = lambda t: self.fc2(F.relu(self.fc1(t)))  # noqa: E731
        xc = x * torch.sigmoid(mlp(x.mean(axes, keepdim=True)) + mlp(x.amax(axes, keepdim=True)))
        return xc * torch.sigmoid(self.spatial(torch.cat([xc.mean(1, keepdim=True), xc.amax(1, keepdim=True)], 1)))


class AttentionGate(nn.Module):
    def __init__(self, dims, skip_c, gate_c, inter_c, norm):
        super().__init__()
        Conv = conv_nd(dims)
        self.W_x = Conv(skip_c, inter_c, 1, bias=False)
        self.W_g = Conv(gate_c, inter_c, 1)
        self.psi = Conv(inter_c, 1, 1)
        self.norm = make_norm(norm, dims, skip_c)

    def forward(self, x, g):
        gg = self.W_g(g)
        if gg.shape[2:] != x.shape[2:]:
            gg = F.interpolate(gg, size=x.shape[2:], mode="trilinear" if x.dim() == 5 else "bilinear", align_corners=False)
        return self.norm(x * torch.sigmoid(self.psi(F.relu(self.W_x(x) + gg))))


def heads_for(dim, preferred):
    h = max(1, min(preferred, dim))
    while dim % h:
        h -= 1
    return h


class EncoderDecoder(nn.Module):
    """medseg's EncoderDecoderNet for 'unet' and 'hybridnet' (early fusion), from its NetworkConfig."""

    def __init__(self, cfg):
        super().__init__()
        arch = cfg["architecture"]
        if arch not in ("unet", "hybridnet"):
            raise ValueError(f"models_peer: no PyTorch version of '{arch}' (unet, hybridnet)")
        extra = cfg.get("extra") or {}
        if arch == "hybridnet" and extra.get("fusion", "early") != "early":
            raise ValueError("models_peer: hybridnet with cross-attention fusion is not written here")
        dims, feats, kernels, strides, norm = cfg["dims"], cfg["features"], cfg["kernelSizes"], cfg["strides"], cfg["norm"]
        n = len(feats)
        self.ds = bool(cfg.get("deepSupervision"))
        n_conv = int(extra.get("convsPerStage", 2)) if arch == "unet" else 2
        hybrid = arch == "hybridnet"
        t_stages, depth, heads = int(extra.get("transformerStages", 1)), int(extra.get("depth", 2)), int(extra.get("heads", 4))
        use_cbam, use_gates = hybrid and extra.get("cbam", True) is not False, hybrid and extra.get("gates", True) is not False
        self.encoder, self.encoder_post, self.post_at = nn.ModuleList(), nn.ModuleList(), {}
        cin = cfg["inChannels"]
        for s in range(n):
            self.encoder.append(StackedConvs(dims, cin, feats[s], kernels[s], strides[s], norm, n_conv))
            if hybrid and s >= n - t_stages and s > 0:
                self.post_at[s] = len(self.encoder_post)
                self.encoder_post.append(TransformerStage(dims, feats[s], depth, heads_for(feats[s], heads)))
            cin = feats[s]
        self.ups, self.decoder, self.skip_refine, self.gates, self.seg_heads = (nn.ModuleList() for _ in range(5))
        self.refine_at, self.gates_at = {}, {}
        Conv = conv_nd(dims)
        for s in range(n - 2, -1, -1):
            below, here = feats[s + 1], feats[s]
            self.ups.append(Upsampler(dims, below, here, strides[s + 1], cfg.get("upsample", "transpose")))
            if use_cbam:
                self.refine_at[s] = len(self.skip_refine)
                self.skip_refine.append(CBAM(dims, here, min(4, here)))
            if use_gates:
                self.gates_at[s] = len(self.gates)
                self.gates.append(AttentionGate(dims, here, below, max(1, here // 2), norm))
            self.decoder.append(StackedConvs(dims, 2 * here, here, kernels[s], 1, norm, n_conv))
            if s == 0 or self.ds:
                self.seg_heads.append(Conv(here, cfg["numClasses"], 1))

    def forward(self, x):
        skips, h = [], x
        for s, enc in enumerate(self.encoder):
            h = enc(h)
            if s in self.post_at:
                h = self.encoder_post[self.post_at[s]](h)
            skips.append(h)
        outs, head = [], 0
        for k, s in enumerate(range(len(self.encoder) - 2, -1, -1)):
            skip = skips[s]
            up = self.ups[k](h, skip.shape[2:])
            if s in self.refine_at:
                skip = self.skip_refine[self.refine_at[s]](skip)
            if s in self.gates_at:
                skip = self.gates[self.gates_at[s]](skip, h)
            h = self.decoder[k](torch.cat([up, skip], 1))
            if s == 0 or self.ds:
                if s == 0 or self.training:
                    outs.insert(0, self.seg_heads[head](h))
                head += 1
        return outs if self.ds and self.training else outs[0]


def unet_config(feats, strides, classes):
    """The plan-like U-Net config bench/models.ts times: 3D, 3x3x3 kernels, instance norm, deep supervision, one input channel."""
    return {
        "architecture": "unet",
        "dims": 3,
        "inChannels": 1,
        "numClasses": classes,
        "features": feats,
        "kernelSizes": [[3, 3, 3]] * len(feats),
        "strides": strides,
        "deepSupervision": True,
        "norm": "instance",
    }


def one_shot(cfg):
    torch.set_num_threads(int(cfg.get("threads", 2)))
    net = EncoderDecoder(unet_config(cfg["features"], cfg["strides"], cfg["classes"]))
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


def read_raw(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(shape))


def serve_deploy():
    """Commands: load {network, weights}; time {input, shape, batch, reps, warmup}; forward {input, shape, output}."""
    torch.set_num_threads(int(os.environ.get("PEER_THREADS", torch.get_num_threads())))
    state = {}

    def load(msg):
        net = EncoderDecoder(msg["network"])
        weights, _ = load_safetensors(msg["weights"])
        own = net.state_dict()
        # medseg's BatchNorm keeps no num_batches_tracked counter; everything else must match by name and shape.
        missing = [k for k in own if k not in weights and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in weights if k not in own]
        wrong = [k for k in weights if k in own and tuple(weights[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or wrong:
            raise ValueError(f"weights do not fit the network: missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
        net.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
        net.eval()
        state["net"] = net
        return {"params": sum(p.numel() for p in net.parameters())}

    def batch_of(msg):
        x = read_raw(msg["input"], msg["shape"])
        return x.expand(msg["batch"], *x.shape[1:]).contiguous() if msg.get("batch", 1) != x.shape[0] else x

    def timed(msg):
        net, x = state["net"], batch_of(msg)
        with torch.no_grad():
            for _ in range(msg.get("warmup", 0)):
                net(x)
            return {"ms": time_repeated(lambda: net(x), msg["reps"])}

    def forward(msg):
        with torch.no_grad():
            y = state["net"](read_raw(msg["input"], msg["shape"]))
        y.contiguous().numpy().astype(np.float32).tofile(msg["output"])
        return {"shape": list(y.shape)}

    ready = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "malloc_conf": os.environ.get("MALLOC_CONF", ""),
    }
    serve(ready, {"load": load, "time": timed, "forward": forward})


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve_deploy()
    else:
        one_shot(json.loads(sys.argv[1]))
