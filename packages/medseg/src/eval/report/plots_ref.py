"""Independent check of plots.test.ts SVGs: parses them with xml.etree (so the
markup must be well-formed and escaped) and reads back positions through the
axis tick labels, comparing with numpy statistics. JSON on stdin / stdout."""
import json
import sys
import xml.etree.ElementTree as ET

import numpy as np

NS = "{http://www.w3.org/2000/svg}"
req = json.load(sys.stdin)
out = []


def texts(root):
    return [t for t in root.iter(NS + "text")]


def inverse_axis(root, axis):
    """Map pixel -> data from the tick labels of the y axis (text-anchor end) or x axis (middle, below plot)."""
    pts = []
    for t in texts(root):
        txt = "".join(t.itertext()).strip()
        try:
            v = float(txt)
        except ValueError:
            continue
        if axis == "y" and t.get("text-anchor") == "end" and t.get("dominant-baseline") == "middle":
            pts.append((float(t.get("y")), v))
        if axis == "x" and t.get("text-anchor") == "middle" and t.get("y") is not None and t.get("x") is not None and "rotate" not in (t.get("transform") or ""):
            pts.append((float(t.get("x")), v))
    pts = sorted(set(pts))
    (p0, v0), (p1, v1) = pts[0], pts[-1]
    return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0)


for item in req:
    root = ET.fromstring(item["svg"])
    res = {"title": root.find(NS + "title").text, "seriesNames": [g.get("data-series") for g in root.iter(NS + "g") if g.get("data-series") is not None]}
    res["allText"] = " ".join("".join(t.itertext()) for t in texts(root))
    if item["kind"] == "box":
        inv = inverse_axis(root, "y")
        res["medians"], res["expected"] = [], []
        for g, vals in zip([g for g in root.iter(NS + "g") if g.get("class") == "series"], item["values"]):
            a = np.asarray([v for v in vals if v is not None], dtype=float)
            a = a[np.isfinite(a)]
            med = [l for l in g.iter(NS + "line") if l.get("stroke-width") == "2.5"][0]
            res["medians"].append(inv(float(med.get("y1"))))
            res["expected"].append(float(np.median(a)))
            res.setdefault("dots", []).append(len(list(g.iter(NS + "circle"))))
            res.setdefault("finite", []).append(int(a.size))
    if item["kind"] == "scatter":
        invx, invy = inverse_axis(root, "x"), inverse_axis(root, "y")
        circles = list(root.iter(NS + "circle"))
        res["points"] = sorted((round(invx(float(c.get("cx"))), 2), round(invy(float(c.get("cy"))), 2)) for c in circles)
        line = [l for l in root.iter(NS + "line") if l.get("class") == "identity"][0]
        res["identity"] = [invx(float(line.get("x1"))) - invy(float(line.get("y1"))), invx(float(line.get("x2"))) - invy(float(line.get("y2")))]
    if item["kind"] == "calibration":
        eces = []
        for b in item["bins"]:
            c, a, n = (np.asarray(b[k], dtype=float) for k in ("confidence", "accuracy", "count"))
            eces.append(float(np.sum(n * np.abs(a - c)) / np.sum(n)))
        res["ece"] = eces
    if item["kind"] == "bar":
        inv = inverse_axis(root, "y")
        heights = []
        for g in root.iter(NS + "g"):
            if g.get("class") != "series":
                continue
            heights.append([inv(float(r.get("y"))) for r in g.iter(NS + "rect")])
        res["tops"] = heights
    out.append(res)
json.dump(out, sys.stdout)
