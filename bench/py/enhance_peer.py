"""scikit-image / SciPy peers of bench/enhance.ts, on the volumes it writes
(raw float64, C order [nz, ny, nx], intensities divided by the clean
volume's 99th-percentile foreground):

- denoising, per noise level: the noisy input itself; non-local means
  (denoise_nl_means, fast_mode, patch_size 5, patch_distance 6, h 0.8 times
  the noise estimated by estimate_sigma, sigma = that estimate, as
  scikit-image's own example sets it); total variation
  (denoise_tv_chambolle) with the weight of the grid that gives the best
  mean PSNR on the tuning (training) cases;
- super-resolution: scipy.ndimage.zoom(order=3, mode='reflect',
  grid_mode=True) of the thick-slice volume along its axis.

PSNR and SSIM (gaussian_weights, sigma 1.5, population covariance) use the
clean volume's max - min as the data range. Times are seconds per volume
(one thread).

stdin: JSON {denoise: [{level, tune: [case], cases: [case]}], tvWeights,
             sr: [{factor, axis, cases: [{id, clean, thick, shape, thickShape}]}]}
       with case = {id, clean, noisy, shape}
stdout: JSON {denoise: [{level, tvWeight, tvTuning, cases: [...]}], sr: [...]}
"""
import json
import sys
import time

import numpy as np
from scipy.ndimage import zoom
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, estimate_sigma


def load(path, shape):
    return np.fromfile(path, dtype=np.float64).reshape(shape)


def scores(clean, test):
    r = float(clean.max() - clean.min())
    return {
        'psnr': float(peak_signal_noise_ratio(clean, test, data_range=r)),
        'ssim': float(structural_similarity(clean, test, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=r)),
    }


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def nlm(noisy):
    sigma = float(estimate_sigma(noisy))
    out = denoise_nl_means(noisy, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6)
    return out, sigma


def denoise_level(job, weights):
    tune = [(load(c['clean'], c['shape']), load(c['noisy'], c['shape'])) for c in job['tune']]
    tuning = []
    for w in weights:
        tuning.append({'weight': w, 'psnr': float(np.mean([scores(c, denoise_tv_chambolle(n, weight=w))['psnr'] for c, n in tune]))})
    best = max(tuning, key=lambda t: t['psnr'])['weight']
    cases = []
    for c in job['cases']:
        clean, noisy = load(c['clean'], c['shape']), load(c['noisy'], c['shape'])
        (nl, sigma), t_nl = timed(lambda: nlm(noisy))
        tv, t_tv = timed(lambda: denoise_tv_chambolle(noisy, weight=best))
        cases.append({
            'id': c['id'],
            'noisy': scores(clean, noisy),
            'nlm': {**scores(clean, nl), 'seconds': t_nl, 'sigmaEstimate': sigma},
            'tv': {**scores(clean, tv), 'seconds': t_tv},
        })
    return {'level': job['level'], 'tvWeight': best, 'tvTuning': tuning, 'cases': cases}


def sr_factor(job):
    cases = []
    for c in job['cases']:
        clean, thick = load(c['clean'], c['shape']), load(c['thick'], c['thickShape'])
        factors = [1.0, 1.0, 1.0]
        factors[job['axis']] = float(job['factor'])
        up, t = timed(lambda: zoom(thick, factors, order=3, mode='reflect', grid_mode=True))
        assert up.shape == clean.shape, (up.shape, clean.shape)
        cases.append({'id': c['id'], 'cubic': {**scores(clean, up), 'seconds': t}})
    return {'factor': job['factor'], 'axis': job['axis'], 'cases': cases}


req = json.load(sys.stdin)
print(json.dumps({
    'denoise': [denoise_level(j, req['tvWeights']) for j in req['denoise']],
    'sr': [sr_factor(j) for j in req['sr']],
}))
