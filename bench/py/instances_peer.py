"""scikit-image peer of the instance-level part of bench/isbi.ts, on the
membrane probability maps and label maps it writes (raw, C order [ny, nx]):

- components: skimage.measure.label of the pixels the model calls cell
  (membrane probability < 0.5), 4-connectivity (connectivity=1, medseg's);
- watershed: skimage.segmentation.watershed over the membrane probability
  from the 4-connected components of probability <= seed_below, flooding
  the pixels with probability < 0.5 (connectivity=1), cell regions without
  a seed kept as cells of their own, as infer/instances.ts
  cellsFromBoundaries does.

Every label map (scikit-image's and medseg's) is scored by
skimage.metrics.adapted_rand_error against the reference cells (reference 0,
the membranes, ignored): V_Rand = 1 - error, pairs of distinct pixels. The
label maps scikit-image makes are written beside the inputs (int32 raw) for
medseg's metrics to score as well. Times are seconds per slice.

stdin: JSON {seedBelow, cases: [{id, shape, probability, reference,
             medseg: {name: path}}], out}
stdout: JSON {versions, cases: [{id, seconds: {components, watershed},
              labels: {name: path}, vRand: {name: value}}]}
"""
import json
import sys
import time

import numpy as np
import skimage
from skimage.measure import label
from skimage.metrics import adapted_rand_error
from skimage.segmentation import watershed


def main():
    job = json.load(sys.stdin)
    seed_below = job['seedBelow']
    results = []
    for case in job['cases']:
        shape = case['shape']
        prob = np.fromfile(case['probability'], dtype=np.float32).reshape(shape)
        ref = np.fromfile(case['reference'], dtype=np.int32).reshape(shape)
        seconds = {}
        t0 = time.perf_counter()
        components = label(prob < 0.5, connectivity=1).astype(np.int32)
        seconds['components'] = time.perf_counter() - t0
        t0 = time.perf_counter()
        markers = label(prob <= seed_below, connectivity=1)
        cells = watershed(prob, markers, mask=prob < 0.5, connectivity=1).astype(np.int32)
        # cell regions no seed reaches are cells of their own (as cellsFromBoundaries does)
        rest = label((cells == 0) & (prob < 0.5), connectivity=1)
        cells[rest > 0] = rest[rest > 0] + cells.max()
        seconds['watershed'] = time.perf_counter() - t0
        labels = {}
        for name, arr in (('skimage components', components), ('skimage watershed', cells)):
            path = f"{job['out']}/{case['id']}-{name.replace(' ', '-')}.i32"
            arr.tofile(path)
            labels[name] = path
        v_rand = {}
        every = {name: np.fromfile(p, dtype=np.int32).reshape(shape) for name, p in case['medseg'].items()}
        every.update({'skimage components': components, 'skimage watershed': cells})
        for name, seg in every.items():
            error, _, _ = adapted_rand_error(ref, seg)
            v_rand[name] = 1.0 - float(error)
        results.append({'id': case['id'], 'seconds': seconds, 'labels': labels, 'vRand': v_rand})
    json.dump({'versions': {'scikit-image': skimage.__version__, 'numpy': np.__version__}, 'cases': results}, sys.stdout)


if __name__ == '__main__':
    main()
