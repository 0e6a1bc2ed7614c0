"""Where the ISBI 2012 membrane labels sit relative to the membranes in the images.

Membranes are dark in the EM slices. For each slice the image is z-scored and the
mean intensity under the membrane mask is taken with the mask shifted by -2..2
pixels along y (rows) and x (columns). Darkest = best aligned. A parabola through
the three shifts around the darkest gives the sub-pixel offset.

  /usr/bin/python3 bench/py/isbi_label_offset.py   (data: $MEDSEG_DATA or ../shared/data)

Writes bench/results/isbi-label-offset.json.
"""
import json
import os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, '..', '..')
data = os.path.join(os.environ.get('MEDSEG_DATA', os.path.join(root, '..', 'shared', 'data')), 'isbi2012-em')
SHIFTS = (-2, -1, 0, 1, 2)
M = 4  # border ignored, so np.roll's wrap-around never counts


def profile(img, mask, axis):
    out = []
    for s in SHIFTS:
        m = np.roll(mask, s, axis)[M:-M, M:-M]
        out.append(float(img[M:-M, M:-M][m].mean()))
    return out


def subpixel(p):
    i = int(np.argmin(p))
    if i in (0, len(p) - 1):
        return float(SHIFTS[i])
    a, b, c = p[i - 1], p[i], p[i + 1]
    return SHIFTS[i] + 0.5 * (a - c) / (a - 2 * b + c)


rows = []
for k in range(30):
    img = np.asarray(Image.open(os.path.join(data, 'images', f'{k}.png')), dtype=np.float64)
    if img.ndim == 3:
        img = img[..., 0]
    img = (img - img.mean()) / img.std()
    lab = np.asarray(Image.open(os.path.join(data, 'masks', f'{k}.png')))
    if lab.ndim == 3:
        lab = lab[..., 0]
    mask = lab < 128  # membrane = 0
    py, px = profile(img, mask, 0), profile(img, mask, 1)
    rows.append({'slice': k, 'y_profile': py, 'x_profile': px, 'y_offset': subpixel(py), 'x_offset': subpixel(px)})

summary = {
    'command': '/usr/bin/python3 bench/py/isbi_label_offset.py',
    'meaning': 'shift (pixels) to apply to the membrane labels to sit on the darkest image pixels; + = down (y) / right (x)',
    'median_y_offset': float(np.median([r['y_offset'] for r in rows])),
    'median_x_offset': float(np.median([r['x_offset'] for r in rows])),
    'slices_darkest_at_y_plus_1': sum(1 for r in rows if int(np.argmin(r['y_profile'])) == 3),
    'per_slice': rows,
}
os.makedirs(os.path.join(here, '..', 'results'), exist_ok=True)
with open(os.path.join(here, '..', 'results', 'isbi-label-offset.json'), 'w') as f:
    json.dump(summary, f, indent=1)
print(json.dumps({k: v for k, v in summary.items() if k != 'per_slice'}, indent=1))
