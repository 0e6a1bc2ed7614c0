"""Independent references for statistics.test.ts: numpy / scipy on JSON from stdin.

Input: {"wilcoxon": [{"d": [...], "method": ..., "correction": ..., "alternative": ...}],
        "describe": [[...values...]], "erfc": [...]}
Output: the same lists with scipy / numpy results.
"""
import json
import sys
import warnings

import numpy as np
from scipy import special, stats

warnings.simplefilter("ignore")

req = json.load(sys.stdin)
out = {"wilcoxon": [], "describe": [], "erfc": []}

for w in req.get("wilcoxon", []):
    d = np.asarray(w["d"], dtype=float)
    res = stats.wilcoxon(d, method=w["method"], correction=w["correction"], alternative=w["alternative"])
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    wp = float(r[nz > 0].sum())
    wm = float(r[nz < 0].sum())
    out["wilcoxon"].append({"statistic": float(res.statistic), "p": float(res.pvalue), "rbc": (wp - wm) / (wp + wm)})

for v in req.get("describe", []):
    a = np.asarray(v, dtype=float)
    a = a[np.isfinite(a)]
    out["describe"].append({
        "mean": float(np.mean(a)),
        "median": float(np.median(a)),
        "std": float(np.std(a, ddof=1)),
        "min": float(np.min(a)),
        "max": float(np.max(a)),
        "q1": float(np.percentile(a, 25)),
        "q3": float(np.percentile(a, 75)),
        "p95": float(np.percentile(a, 95)),
    })

out["erfc"] = [float(special.erfc(x)) for x in req.get("erfc", [])]
json.dump(out, sys.stdout)
