"""SciPy/NumPy reference for the medseg metrics tests and benchmark.

Independent of the TypeScript code: surfaces are mask ^ binary_erosion(mask)
(MONAI get_mask_edges), distances come from distance_transform_edt(~edges,
sampling=spacing) on the full (uncropped) array, HD95 is MONAI's (95th
percentile of each direction, then max), ASSD the mean of both directions,
surface Dice MONAI's compute_surface_dice(use_subvoxels=False), AUC from
average ranks (Mann-Whitney U), ECE from np.bincount.

cases : stdin = JSON {cases: [...], edts: [...]}, stdout = JSON {cases: list of
        {label: metrics}}; each edt job {feature (raw uint8), shape, spacing, out}
        writes distance_transform_edt(feature == 0, sampling) as float64 to out.
  A case: {shape [nx,ny,nz], spacing, labels, tau, bins, mode,
           pred / ref / region: {raw, dtype} (x-fastest bytes) or {gif} (2D,
           foreground = grey > 127), probs?: {raw, dtype, channels}}
bench : stdin = JSON {pred, ref (raw uint8 paths), shape, spacing, tau, rounds};
        stdout = JSON list of seconds per round for HD95 + surface Dice.
"""
import json
import sys
import time

import numpy as np
from PIL import Image
from scipy.ndimage import binary_erosion, distance_transform_edt
from scipy.stats import rankdata


def load(spec, shape):
    if spec is None:
        return None
    if 'gif' in spec:
        a = np.array(Image.open(spec['gif']).convert('L')) > 127  # (H, W) = (ny, nx)
        return a.T.reshape(shape, order='F')
    return np.fromfile(spec['raw'], dtype=spec['dtype']).reshape(shape, order='F')


def squeeze(a, shape, spacing):
    keep = [k for k in range(3) if shape[k] > 1]
    return a.reshape([shape[k] for k in keep], order='F') if a.ndim == 3 else a, [spacing[k] for k in keep]


def edges(m):
    return m ^ binary_erosion(m)


def directed(a_edges, b_edges, sampling):
    if not b_edges.any():
        return np.full(int(a_edges.sum()), np.inf)
    return distance_transform_edt(~b_edges, sampling=sampling)[a_edges]


def surface(p, r, sampling, tau):
    ep, er = edges(p), edges(r)
    if not ep.any() and not er.any():
        return dict(hausdorff=None, hd95=None, assd=None, surfaceDice=None)
    if not ep.any() or not er.any():
        return dict(hausdorff='inf', hd95='inf', assd='inf', surfaceDice=0.0)
    d1, d2 = directed(ep, er, sampling), directed(er, ep, sampling)
    both = np.concatenate([d1, d2])
    return dict(hausdorff=float(max(d1.max(), d2.max())),
                hd95=float(max(np.percentile(d1, 95), np.percentile(d2, 95))),
                assd=float(both.mean()),
                surfaceDice=float((both <= tau).sum() / both.size))


def ratio(a, b):
    return None if b == 0 else a / b


def auc(scores, target):
    npos, nneg = int(target.sum()), int((~target).sum())
    if npos == 0 or nneg == 0:
        return None
    ranks = rankdata(scores)  # average ranks for ties
    u = ranks[target].sum() - npos * (npos + 1) / 2.0
    return float(u / npos / nneg)


def calibration(p, target, bins, mode):
    if mode == 'top-label':
        pred = p >= 0.5
        conf = np.where(pred, p, 1 - p)
        ok = pred == target
    else:
        conf, ok = p, target
    b = np.minimum(np.floor(conf * bins).astype(np.int64), bins - 1)
    cnt = np.bincount(b, minlength=bins).astype(float)
    sc = np.bincount(b, weights=conf, minlength=bins)
    sa = np.bincount(b, weights=ok.astype(float), minlength=bins)
    with np.errstate(invalid='ignore', divide='ignore'):
        mc, ma = sc / cnt, sa / cnt
    nz = cnt > 0
    ece = float((cnt[nz] / cnt.sum() * np.abs(ma[nz] - mc[nz])).sum()) if cnt.sum() else None
    nan = lambda v: [None if np.isnan(x) else float(x) for x in v]
    return ece, dict(confidence=nan(mc), accuracy=nan(ma), count=cnt.tolist())


def case(c):
    shape, spacing = c['shape'], c['spacing']
    pred, ref = load(c['pred'], shape), load(c['ref'], shape)
    region = load(c.get('region'), shape)
    inside = np.ones(shape, bool) if region is None else region != 0
    vox = float(np.prod([spacing[k] for k in range(3) if shape[k] > 1]))
    probs = None
    if c.get('probs'):
        pr = c['probs']
        probs = np.fromfile(pr['raw'], dtype=pr['dtype']).reshape(shape + [pr['channels']], order='F').astype(np.float64)
    out = {}
    for l in c['labels']:
        p, r = (pred == l) & inside, (ref == l) & inside
        tp = int((p & r).sum()); fp = int((p & ~r).sum()); fn = int((~p & r).sum()); tn = int((~p & ~r & inside).sum())
        m = dict(tp=tp, fp=fp, fn=fn, tn=tn,
                 dice=ratio(2 * tp, 2 * tp + fp + fn), iou=ratio(tp, tp + fp + fn),
                 sensitivity=ratio(tp, tp + fn), specificity=ratio(tn, tn + fp),
                 precision=ratio(tp, tp + fp), accuracy=ratio(tp + tn, tp + fp + fn + tn),
                 predVolume=(tp + fp) * vox, refVolume=(tp + fn) * vox)
        ps, sampling = squeeze(p, shape, spacing)
        rs, _ = squeeze(r, shape, spacing)
        m.update(surface(ps, rs, sampling, c['tau']))
        if probs is not None:
            ch = 0 if probs.shape[-1] == 1 else l
            s, t = probs[..., ch][inside], r[inside]
            m['auc'] = auc(s, t)
            m['ece'], m['reliability'] = calibration(s, t, c['bins'], c['mode'])
        out[str(l)] = m
    return out


def bench(job):
    shape, spacing, tau = job['shape'], job['spacing'], job['tau']
    p = np.fromfile(job['pred'], dtype=np.uint8).reshape(shape, order='F') != 0
    r = np.fromfile(job['ref'], dtype=np.uint8).reshape(shape, order='F') != 0
    times = []
    for _ in range(job['rounds']):
        t0 = time.perf_counter()
        # Crop to the union's bounding box first, as MONAI's get_mask_edges does.
        idx = np.argwhere(p | r)
        lo, hi = idx.min(0), idx.max(0) + 1
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        ep, er = edges(p[sl]), edges(r[sl])
        d1, d2 = directed(ep, er, spacing), directed(er, ep, spacing)
        hd95 = max(np.percentile(d1, 95), np.percentile(d2, 95))
        nsd = ((d1 <= tau).sum() + (d2 <= tau).sum()) / (d1.size + d2.size)
        times.append(time.perf_counter() - t0)
    print(json.dumps({'times': times, 'hd95': float(hd95), 'surfaceDice': float(nsd)}))


if __name__ == '__main__':
    job = json.load(sys.stdin)
    if sys.argv[1] == 'cases':
        for e in job.get('edts', []):
            f = np.fromfile(e['feature'], dtype=np.uint8).reshape(e['shape'], order='F')
            f, sampling = squeeze(f, e['shape'], e['spacing'])
            d = distance_transform_edt(f == 0, sampling=sampling) if f.any() else np.full(f.shape, np.inf)
            d.astype(np.float64).ravel(order='F').tofile(e['out'])
        print(json.dumps({'cases': [case(c) for c in job.get('cases', [])]}))
    elif sys.argv[1] == 'bench':
        bench(job)
