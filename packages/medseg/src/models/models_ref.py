"""Independent PyTorch references for the model tests.

usage: models_ref.py CASE IN.safetensors OUT.safetensors
IN holds the TypeScript module's weights (its state-dict names) plus 'input'
(and case parameters in the metadata); OUT gets the reference outputs.
The references are written from the papers' definitions with torch.nn, not
translated from the TypeScript code.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DT = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "U8": np.uint8}


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    base = 8 + n
    for k, v in header.items():
        a, b = v["data_offsets"]
        arr = np.frombuffer(raw[base + a : base + b], dtype=DT[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out, meta


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def conv(x, w, b=None, stride=1):
    pad = [k // 2 for k in w.shape[2:]]
    f = F.conv2d if x.dim() == 4 else F.conv3d
    return f(x, w, b, stride=stride, padding=pad)


def unet(W, meta, x):
    """nnU-Net PlainConvUNet: stages of 2x (conv, instance norm affine, leaky relu 0.01)."""
    strides = json.loads(meta["strides"])
    n = len(strides)

    def cna(h, p, stride=1):
        h = conv(h, W[p + ".conv.weight"], None, stride)
        h = F.instance_norm(h, weight=W[p + ".norm.weight"], bias=W[p + ".norm.bias"], eps=1e-5)
        return F.leaky_relu(h, 0.01)

    def stage(h, p, stride):
        return cna(cna(h, p + ".convs.0", stride), p + ".convs.1")

    skips = []
    h = x
    for s in range(n):
        h = stage(h, f"encoder.{s}", strides[s])
        skips.append(h)
    outs = []
    for k, s in enumerate(range(n - 2, -1, -1)):
        tf = F.conv_transpose2d if x.dim() == 4 else F.conv_transpose3d
        up = tf(h, W[f"ups.{k}.op.weight"], W[f"ups.{k}.op.bias"], stride=strides[s + 1])
        h = stage(torch.cat([up, skips[s]], 1), f"decoder.{k}", 1)
        outs.insert(0, conv(h, W[f"seg_heads.{k}.weight"], W[f"seg_heads.{k}.bias"]))
    return {f"out{i}": o for i, o in enumerate(outs)}


def resenc_unet(W, meta, x):
    """nnU-Net ResEnc U-Net: conv stem, stages of residual blocks (conv-norm-act, conv-norm, + shortcut, act), one conv per decoder stage."""
    strides = json.loads(meta["strides"])
    blocks = json.loads(meta["blocks"])
    n = len(strides)

    def norm(h, p):
        return F.instance_norm(h, weight=W[p + ".weight"], bias=W[p + ".bias"], eps=1e-5)

    def cna(h, p, stride=1, act=True):
        h = norm(conv(h, W[p + ".conv.weight"], None, stride), p + ".norm")
        return F.leaky_relu(h, 0.01) if act else h

    def block(h, p, stride):
        y = cna(cna(h, p + ".conv1", stride), p + ".conv2", act=False)
        if p + ".skip.0.weight" in W:
            w = W[p + ".skip.0.weight"]
            f = F.conv2d if h.dim() == 4 else F.conv3d
            h = norm(f(h, w, None, stride=stride), p + ".skip.1")
        return F.leaky_relu(y + h, 0.01)

    skips = []
    h = x
    for s in range(n):
        i = 0
        if s == 0:
            h = cna(h, "encoder.0.0")
            i = 1
        for b in range(blocks[s]):
            h = block(h, f"encoder.{s}.{i + b}", strides[s] if b == 0 else 1)
        skips.append(h)
    outs = []
    for k, s in enumerate(range(n - 2, -1, -1)):
        tf = F.conv_transpose2d if x.dim() == 4 else F.conv_transpose3d
        up = tf(h, W[f"ups.{k}.op.weight"], W[f"ups.{k}.op.bias"], stride=strides[s + 1])
        h = cna(torch.cat([up, skips[s]], 1), f"decoder.{k}.convs.0")
        outs.insert(0, conv(h, W[f"seg_heads.{k}.weight"], W[f"seg_heads.{k}.bias"]))
    return {f"out{i}": o for i, o in enumerate(outs)}


def swin_block(W, meta, x):
    """Swin block on channels-last [N, H, W, C], written as masked attention over
    the whole (padded, cyclically shifted) map: token p may attend to q when both
    lie in the same window and, if shifted, the same pre-shift region."""
    win = json.loads(meta["window"])
    shift = meta["shift"] == "1"
    heads = int(meta["heads"])
    n, H, Wd, C = x.shape
    ln = lambda t, p: F.layer_norm(t, (C,), W[p + ".weight"], W[p + ".bias"], 1e-5)
    h = ln(x, "norm1")
    Hp, Wp = -(-H // win[0]) * win[0], -(-Wd // win[1]) * win[1]
    h = F.pad(h, (0, 0, 0, Wp - Wd, 0, Hp - H))
    sh = [win[0] // 2 if H > win[0] else 0, win[1] // 2 if Wd > win[1] else 0] if shift else [0, 0]
    h = torch.roll(h, shifts=(-sh[0], -sh[1]), dims=(1, 2))
    ys, xs = torch.meshgrid(torch.arange(Hp), torch.arange(Wp), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()

    def region(coord, size, w, s):
        # region of the rolled position in the original (unrolled) padded map
        if s == 0:
            return torch.zeros_like(coord)
        return (coord >= size - w).long() + (coord >= size - s).long()

    reg = region(ys, Hp, win[0], sh[0]) * 3 + region(xs, Wp, win[1], sh[1])
    wid = (ys // win[0]) * 1000 + xs // win[1]
    allowed = (wid[:, None] == wid[None, :]) & (reg[:, None] == reg[None, :])
    tab = W["attn.relative_position_bias_table"]
    ry = ys[:, None] % win[0] - ys[None, :] % win[0] + win[0] - 1
    rx = xs[:, None] % win[1] - xs[None, :] % win[1] + win[1] - 1
    bias = tab[ry * (2 * win[1] - 1) + rx]  # [L, L, heads]
    t = h.reshape(n, Hp * Wp, C)
    qkv = F.linear(t, W["attn.qkv.weight"], W["attn.qkv.bias"]).reshape(n, -1, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = q @ k.transpose(-2, -1) / (C // heads) ** 0.5 + bias.permute(2, 0, 1)[None]
    # Only same-window pairs exist in window attention; cross-region pairs inside a window get -100.
    scores = scores + (~allowed).float()[None, None] * -100.0
    same_window = (wid[:, None] == wid[None, :])
    scores = scores.masked_fill(~same_window[None, None], float("-inf"))
    o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, Hp, Wp, C)
    o = F.linear(o, W["attn.proj.weight"], W["attn.proj.bias"])
    o = torch.roll(o, shifts=(sh[0], sh[1]), dims=(1, 2))[:, :H, :Wd]
    x1 = x + o
    m = ln(x1, "norm2")
    m = F.linear(F.gelu(F.linear(m, W["mlp.fc1.weight"], W["mlp.fc1.bias"])), W["mlp.fc2.weight"], W["mlp.fc2.bias"])
    return {"out": x1 + m}


def transformer_block(W, meta, x):
    E = x.shape[-1]
    heads = int(meta["heads"])
    mha = torch.nn.MultiheadAttention(E, heads, batch_first=True)
    mha.in_proj_weight.data = W["attn.in_proj_weight"]
    mha.in_proj_bias.data = W["attn.in_proj_bias"]
    mha.out_proj.weight.data = W["attn.out_proj.weight"]
    mha.out_proj.bias.data = W["attn.out_proj.bias"]
    h = F.layer_norm(x, (E,), W["norm1.weight"], W["norm1.bias"])
    a, w = mha(h, h, h, need_weights=True, average_attn_weights=True)
    x1 = x + a
    m = F.layer_norm(x1, (E,), W["norm2.weight"], W["norm2.bias"])
    m = F.linear(F.gelu(F.linear(m, W["mlp.fc1.weight"], W["mlp.fc1.bias"])), W["mlp.fc2.weight"], W["mlp.fc2.bias"])
    return {"out": x1 + m, "attn": w}


def cbam(W, meta, x):
    dims = list(range(2, x.dim()))
    mlp = lambda t: conv(F.relu(conv(t, W["fc1.weight"], W["fc1.bias"])), W["fc2.weight"], W["fc2.bias"])
    ca = torch.sigmoid(mlp(x.mean(dims, keepdim=True)) + mlp(x.amax(dims, keepdim=True)))
    xc = x * ca
    sa = torch.sigmoid(conv(torch.cat([xc.mean(1, keepdim=True), xc.amax(1, keepdim=True)], 1), W["spatial.weight"], W["spatial.bias"]))
    return {"out": xc * sa}


def gate(W, meta, x):
    g = W["gating"]
    gg = conv(g, W["W_g.weight"], W["W_g.bias"])
    mode = "bilinear" if x.dim() == 4 else "trilinear"
    gg = F.interpolate(gg, size=x.shape[2:], mode=mode, align_corners=False)
    alpha = torch.sigmoid(conv(F.relu(conv(x, W["W_x.weight"]) + gg), W["psi.weight"], W["psi.bias"]))
    y = F.instance_norm(x * alpha, weight=W["norm.weight"], bias=W["norm.bias"], eps=1e-5)
    return {"out": y, "alpha": alpha}


CASES = {"unet": unet, "resenc_unet": resenc_unet, "swin_block": swin_block, "transformer_block": transformer_block, "cbam": cbam, "gate": gate}

if __name__ == "__main__":
    case, src, dst = sys.argv[1:4]
    W, meta = load(src)
    x = W.pop("input")
    with torch.no_grad():
        save(dst, CASES[case](W, meta, x))
