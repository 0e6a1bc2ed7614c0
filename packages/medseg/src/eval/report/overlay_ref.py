"""Independent reference for overlay.test.ts: decodes the PNG with PIL and
recomputes outlines with scipy.ndimage, slices with numpy indexing.
Input JSON on stdin; prints JSON."""
import io
import json
import sys

import numpy as np
from PIL import Image
from scipy import ndimage

req = json.load(sys.stdin)
out = {}
if "png" in req:
    p = req["png"]
    w, h, s = p["width"], p["height"], p["scale"]
    img = np.asarray(Image.open(io.BytesIO(bytes.fromhex(p["hex"]))).convert("RGB")).astype(int)
    def edge(a):
        m = np.asarray(a).reshape(h, w) != 0
        m = np.repeat(np.repeat(m, s, axis=0), s, axis=1)
        er = ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(2, 1), border_value=0)
        return m & ~er
    re, pe = edge(p["reference"]), edge(p["prediction"])
    lo, hi = p["window"]
    base = np.asarray(p["image"], dtype=float).reshape(h, w)
    base = np.repeat(np.repeat(base, s, axis=0), s, axis=1)
    grey = np.round(np.clip((base - lo) / (hi - lo), 0, 1) * 255).astype(int)
    expect = np.stack([grey] * 3, axis=-1)
    expect[re] = p["refColor"]
    expect[pe] = p["predColor"]
    out["png"] = {
        "shape": list(img.shape),
        "mismatches": int(np.any(img != expect, axis=-1).sum()),
        "refEdge": int(re.sum()),
        "predEdge": int(pe.sum()),
    }
if "volume" in req:
    v = req["volume"]
    nx, ny, nz = v["size"]
    a = np.asarray(v["labels"]).reshape(nz, ny, nx) != 0
    counts = {2: a.sum(axis=(1, 2)), 1: a.sum(axis=(0, 2)), 0: a.sum(axis=(0, 1))}
    out["largest"] = {str(k): int(np.argmax(c)) for k, c in counts.items()}
    d = np.asarray(v["data"], dtype=np.float32).reshape(nz, ny, nx)
    i = v["index"]
    out["slices"] = {"2": d[i].ravel().tolist(), "1": d[:, i, :].ravel().tolist(), "0": d[:, :, i].ravel().tolist()}
json.dump(out, sys.stdout)
