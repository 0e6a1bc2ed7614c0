"""Independent reading of a generated report for html-report.test.ts: parses the HTML
with the stdlib parser, decodes every embedded PNG with PIL and recomputes the
summary means with numpy from the rows. JSON {html, rows, metrics} on stdin."""
import base64
import io
import json
import math
import sys
from html.parser import HTMLParser

import numpy as np
from PIL import Image


class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.cur, self.cell = [], [], None, None
        self.imgs, self.links, self.svgs, self.tags = [], [], 0, set()
        self.in_summary = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "table" and "summary-table" in (a.get("class") or ""):
            self.in_summary += 1
        if self.in_summary and tag == "tr" and "data-model" in a:
            self.cur = {"model": a["data-model"], "cells": []}
        if self.cur is not None and tag == "td":
            self.cell = ""
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag):
        if tag == "td" and self.cur is not None and self.cell is not None:
            self.cur["cells"].append(self.cell.strip())
            self.cell = None
        if tag == "tr" and self.cur is not None:
            self.rows.append(self.cur)
            self.cur = None
        if tag == "table" and self.in_summary:
            self.in_summary -= 1

    def handle_data(self, d):
        if self.cell is not None:
            self.cell += d + " "


req = json.load(sys.stdin)
p = P()
p.feed(req["html"])
pngs = []
for src in p.imgs:
    assert src.startswith("data:image/png;base64,"), src[:40]
    im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    im.load()
    pngs.append(list(im.size))
means = {}
for r in req["rows"]:
    for m in req["metrics"]:
        v = r[m]
        v = float(v) if not isinstance(v, str) else float(v.replace("Infinity", "inf"))
        means.setdefault(r["model"], {}).setdefault(m, []).append(v)
expected = {mod: {m: float(np.mean([x for x in vals if math.isfinite(x)])) for m, vals in d.items()} for mod, d in means.items()}
json.dump({"summaryRows": p.rows, "pngs": pngs, "links": p.links, "svgs": p.svgs, "tags": sorted(p.tags), "expected": expected}, sys.stdout)
