#!/usr/bin/env python3
"""Converts a PyTorch checkpoint to a safetensors file medseg reads (`medseg train --init`).

    python3 scripts/pth-to-safetensors.py checkpoint_final.pth weights.safetensors

Takes the state dict from the checkpoint: nnU-Net v2's 'network_weights', else
'state_dict' or 'model' (MONAI, Lightning), else the file itself when it maps
names to tensors. Writes the safetensors layout directly (8-byte header length,
JSON header, raw little-endian data), so only PyTorch is needed. Tensors are
written as float32 (integer buffers such as BatchNorm's num_batches_tracked are
left out: medseg does not use them).
"""
import json
import struct
import sys

import torch


def state_dict_of(obj):
    for key in ("network_weights", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            return obj[key]
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise SystemExit("no state dict in this checkpoint (looked for network_weights, state_dict, model)")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    # weights_only keeps an untrusted checkpoint from running code where PyTorch supports it.
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
    except TypeError:
        ckpt = torch.load(src, map_location="cpu")
    header, chunks, offset = {}, [], 0
    for name, t in state_dict_of(ckpt).items():
        if not t.is_floating_point():
            continue
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {"source": src}
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    print(f"wrote {len(chunks)} tensors to {dst}")


if __name__ == "__main__":
    main()
