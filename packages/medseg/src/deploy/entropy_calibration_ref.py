"""Reference for entropy-calibration.ts: the KL-divergence threshold of a histogram of |x|,
with NumPy arrays and scipy.stats.entropy (which normalises and computes sum p log(p / q)).
Reads {"histograms": [[counts...], ...], "levels": 128} on stdin; writes
{"bins": [...], "divergences": [[...], ...]} (the chosen bin count and every candidate's divergence)."""
import json
import sys

import numpy as np
from scipy.stats import entropy

EPS = 1e-4


def smooth(d):
    d = d / d.sum()
    zero = d == 0
    n_zero = int(zero.sum())
    n_nonzero = d.size - n_zero
    if n_nonzero == 0:
        return None
    out = d - EPS * n_zero / n_nonzero
    out[zero] = EPS
    if (out <= 0).any():
        return None
    return out / out.sum()


def divergences(hist, levels):
    hist = np.asarray(hist, dtype=np.float64)
    result = []
    for i in range(levels, hist.size + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        merged = i // levels
        level = np.minimum(np.arange(i) // merged, levels - 1)
        counts = np.bincount(level, weights=hist[:i], minlength=levels)
        nonzero = np.bincount(level, weights=(p != 0).astype(np.float64), minlength=levels)
        q = np.where(p != 0, counts[level] / np.maximum(nonzero[level], 1), 0.0)
        ps = smooth(p) if p.sum() > 0 else None
        qs = smooth(q) if ps is not None and q.sum() > 0 else None
        result.append(float(entropy(ps, qs)) if qs is not None else float('inf'))
    return result


def main():
    inp = json.load(sys.stdin)
    levels = inp['levels']
    divs = [divergences(h, levels) for h in inp['histograms']]
    bins = [levels + int(np.argmin(d)) for d in divs]
    json.dump({'bins': bins, 'divergences': [[x if np.isfinite(x) else None for x in d] for d in divs]}, sys.stdout)


main()
