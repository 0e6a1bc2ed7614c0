"""Independent reference for evaluate-folder.test.ts (NumPy/SciPy/nibabel/PIL).

stdin: JSON {pairs: [{case, pred (path or null), ref, region (path or null)}],
             labels, binarize, tau}
stdout: JSON list of {case, label, dice, sensitivity, specificity, hd95, auc?}
        (auc when the pair has `probs`: a NIfTI whose channel c scores label c)
        (NaN / Infinity as the strings "NaN" / "Infinity").
A missing prediction is an all-zero prediction. Surfaces: mask ^ binary_erosion
(full connectivity 1, border = background), distances by distance_transform_edt
with the reference's voxel spacing; HD95 = max of both directed 95th percentiles.
"""
import json
import sys

import nibabel as nib
import numpy as np
from PIL import Image
from scipy.ndimage import binary_erosion, distance_transform_edt
from scipy.stats import rankdata


def load(path):
    if path.endswith('.nii') or path.endswith('.nii.gz'):
        img = nib.load(path)
        return np.asanyarray(img.dataobj), [float(z) for z in img.header.get_zooms()[:3]]
    a = np.array(Image.open(path))  # palette images: the indices
    return a.T, [1.0, 1.0]  # (W, H) = x-fastest voxel order


def directed(a, b, sampling):
    if not a.any():
        return np.array([])
    if not b.any():
        return np.full(int(a.sum()), np.inf)
    return distance_transform_edt(~b, sampling=sampling)[a]


def hd95(p, r, sampling):
    if not p.any() and not r.any():
        return float('nan')
    if not p.any() or not r.any():
        return float('inf')
    ep = p & ~binary_erosion(p, border_value=0)
    er = r & ~binary_erosion(r, border_value=0)
    return max(np.percentile(directed(ep, er, sampling), 95), np.percentile(directed(er, ep, sampling), 95))


def auc(scores, target):
    pos = int(target.sum()); neg = target.size - pos
    if pos == 0 or neg == 0:
        return float('nan')
    ranks = rankdata(scores)  # ties share the average rank (Mann-Whitney)
    return float((ranks[target].sum() - pos * (pos + 1) / 2) / (pos * neg))


def ratio(a, b):
    return float(a) / float(b) if b else float('nan')


def main():
    job = json.load(sys.stdin)
    out = []
    for pair in job['pairs']:
        ref, sampling = load(pair['ref'])
        pred = load(pair['pred'])[0] if pair['pred'] else np.zeros_like(ref)
        region = load(pair['region'])[0] != 0 if pair['region'] else np.ones(ref.shape, bool)
        probs = np.asanyarray(nib.load(pair['probs']).dataobj) if pair.get('probs') else None  # (x, y, z, channel)
        if job['binarize']:
            ref, pred = (ref != 0).astype(np.uint8), (pred != 0).astype(np.uint8)
        for label in job['labels']:
            p = (pred == label) & region
            r = (ref == label) & region
            tp = int((p & r).sum()); fp = int((p & ~r).sum()); fn = int((~p & r).sum())
            tn = int((~p & ~r & region).sum())
            row = {}
            if probs is not None:
                row['auc'] = auc(probs[..., label][region], (ref == label)[region])
            out.append({
                **row,
                'case': pair['case'], 'label': label,
                'dice': ratio(2 * tp, 2 * tp + fp + fn),
                'sensitivity': ratio(tp, tp + fn),
                'specificity': ratio(tn, tn + fp),
                'hd95': float(hd95(p, r, sampling[:p.ndim])),
            })
    print(json.dumps(out).replace('NaN', '"NaN"').replace('Infinity', '"Infinity"'))


main()
