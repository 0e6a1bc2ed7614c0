import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isbiBoundaryMap } from '../testing/isbi-boundary.ts';
import { runPythonJson } from '../testing/python.ts';
import { detectionScores, randInfoScores } from './instance-metrics.ts';

/** A 1 x w map from rows of object ids. */
const row = (ids: number[]) => Int32Array.from(ids);

test('detection at IoU thresholds on a hand-built case with known matches', () => {
  // Reference: objects 1 (4 px), 2 (4 px), 3 (2 px). Prediction: 7 = object 1 exactly,
  // 8 = object 2 shifted by one (IoU 3/5 = 0.6), object 3 missed, 9 = a false positive.
  const truth = row([1, 1, 1, 1, 0, 2, 2, 2, 2, 0, 0, 3, 3, 0, 0, 0]);
  const pred = row([7, 7, 7, 7, 0, 0, 8, 8, 8, 8, 0, 0, 0, 0, 9, 9]);
  const { perThreshold, meanAp } = detectionScores(pred, truth, [0.5, 0.7]);
  assert.deepEqual(
    perThreshold.map((s) => [s.tp, s.fp, s.fn]),
    [
      [2, 1, 1],
      [1, 2, 2],
    ],
  );
  assert.equal(perThreshold[0]!.f1, 2 / 3);
  assert.equal(perThreshold[0]!.ap, 0.5);
  assert.equal(perThreshold[1]!.ap, 0.2);
  assert.equal(meanAp, 0.35);
  // Perfect and empty cases.
  assert.equal(detectionScores(truth, truth).meanAp, 1);
  assert.deepEqual(detectionScores(row([0, 0]), row([0, 0])).perThreshold[0], { threshold: 0.5, tp: 0, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1, ap: 1 });
  assert.throws(() => detectionScores(row([1]), row([1, 1])), /differ in size/);
});

test('V_Rand and V_Info: perfect, fully merged and split proposals give the values the definitions give by hand', () => {
  const truth = row([1, 1, 2, 2, 0]);
  const perfect = randInfoScores(row([5, 5, 6, 6, 9]), truth);
  assert.deepEqual([perfect.vRand, perfect.vInfo, perfect.pixels], [1, 1, 4]);
  // Everything one segment: no split (split scores 1); merge Rand = Σt²/Σs² = (4+4)/16, merge info = I/H(T) = 0.
  const merged = randInfoScores(row([1, 1, 1, 1, 1]), truth);
  assert.deepEqual([merged.randSplit, merged.randMerge, merged.infoSplit, merged.infoMerge], [1, 0.5, 1, 0]);
  // Every pixel its own segment: Rand split = Σp²/Σt² = 4/8; info split = I/H(S) = ln2/ln4.
  const split = randInfoScores(row([1, 2, 3, 4, 0]), truth);
  assert.equal(split.randSplit, 0.5);
  assert.ok(Math.abs(split.infoSplit - 0.5) < 1e-12 && Math.abs(split.infoMerge - 1) < 1e-12);
  assert.throws(() => randInfoScores(row([1]), row([0])), /no foreground/);
});

const SKIMAGE = `
import json, sys, numpy as np
from scipy import ndimage
from skimage.metrics import adapted_rand_error, variation_of_information
from skimage.segmentation import watershed
d = json.load(sys.stdin)
h, w = d["shape"]
cells = np.array(d["mask"], dtype=np.uint8).reshape(h, w) >= 128
truth, nt = ndimage.label(cells)
elev = np.array(d["elevation"], dtype=np.float64).reshape(h, w)
markers, nm = ndimage.label(elev <= 0.05)
prop = watershed(elev, markers, connectivity=1)
are, prec, rec = adapted_rand_error(truth, prop, ignore_labels=(0,))
# skimage returns [H(prop | truth) (false splits), H(truth | prop) (false merges)] in bits; to nats
h_s_given_t, h_t_given_s = variation_of_information(truth, prop, ignore_labels=(0,)) * np.log(2)
fg = truth > 0
def H(x):
    _, c = np.unique(x, return_counts=True); p = c / c.sum(); return float(-(p * np.log(p)).sum())
hT, hS = H(truth[fg]), H(prop[fg])
# 'all' pairs: the formula on probabilities, self-pairs included.
pairs = truth[fg].astype(np.int64) * (prop.max() + 1) + prop[fg]
_, cj = np.unique(pairs, return_counts=True); _, ct = np.unique(truth[fg], return_counts=True); _, cs = np.unique(prop[fg], return_counts=True)
print(json.dumps({"nt": int(nt), "truth": truth.ravel().tolist(), "prop": prop.ravel().tolist(), "vrand": 1 - are, "rand_pair": sorted([prec, rec]),
  "info_split": (hT - h_t_given_s) / hS, "info_merge": (hS - h_s_given_t) / hT,
  "all_split": float((cj**2).sum() / (ct**2).sum()), "all_merge": float((cj**2).sum() / (cs**2).sum())}))
`;

test('on a real ISBI 2012 slice: V_Rand (distinct pairs) equals scikit-image adapted_rand_error, V_Info its variation of information, all-pairs Rand NumPy', () => {
  const { w, h, mask, elevation } = isbiBoundaryMap(0);
  const ref = runPythonJson<{
    nt: number;
    truth: number[];
    prop: number[];
    vrand: number;
    rand_pair: number[];
    info_split: number;
    info_merge: number;
    all_split: number;
    all_merge: number;
  }>(['-c', SKIMAGE], { shape: [h, w], mask, elevation: Array.from(elevation) });
  assert.ok(ref.nt > 50, `${ref.nt} cells in the slice`);
  const d = randInfoScores(ref.prop, ref.truth, { pairs: 'distinct' });
  assert.ok(Math.abs(d.vRand - ref.vrand) < 1e-9, `V_Rand ${d.vRand} vs skimage ${ref.vrand}`);
  assert.deepEqual(
    [d.randSplit, d.randMerge].sort().map((v) => v.toFixed(9)),
    ref.rand_pair.map((v) => v.toFixed(9)),
  );
  assert.ok(
    Math.abs(d.infoSplit - ref.info_split) < 1e-9 && Math.abs(d.infoMerge - ref.info_merge) < 1e-9,
    JSON.stringify([d, ref.info_split, ref.info_merge]),
  );
  const a = randInfoScores(ref.prop, ref.truth);
  assert.ok(Math.abs(a.randSplit - ref.all_split) < 1e-12 && Math.abs(a.randMerge - ref.all_merge) < 1e-12);
  assert.ok(d.vRand > 0.5 && d.vRand < 1, `a blurred-membrane watershed is good but not perfect: ${d.vRand}`);
});
