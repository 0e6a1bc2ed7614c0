"""scikit-image / SciPy reference for the image-quality and enhancement tests.

stdin = JSON list of jobs, stdout = JSON list of results:
  {op: 'metrics', ref, test (raw float64 paths, C order), shape, data_range}
      -> {psnr, ssim}: peak_signal_noise_ratio and structural_similarity
         (gaussian_weights, sigma 1.5, population covariance)
  {op: 'zoom', input (raw float64), shape, axis, factor, out}
      -> {shape}: scipy.ndimage.zoom(order=3, mode='reflect', grid_mode=True)
         along one axis, written as float64 to out
"""
import json
import sys

import numpy as np
from scipy.ndimage import zoom
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def run(job):
    shape = tuple(job['shape'])
    if job['op'] == 'metrics':
        ref = np.fromfile(job['ref'], dtype=np.float64).reshape(shape)
        test = np.fromfile(job['test'], dtype=np.float64).reshape(shape)
        if shape[0] == 1:
            ref, test = ref[0], test[0]
        r = job['data_range']
        return {
            'psnr': float(peak_signal_noise_ratio(ref, test, data_range=r)),
            'ssim': float(structural_similarity(ref, test, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=r)),
        }
    if job['op'] == 'zoom':
        a = np.fromfile(job['input'], dtype=np.float64).reshape(shape)
        factors = [1.0] * a.ndim
        factors[job['axis']] = job['factor']
        out = zoom(a, factors, order=3, mode='reflect', grid_mode=True)
        out.astype(np.float64).tofile(job['out'])
        return {'shape': list(out.shape)}
    raise ValueError(job['op'])


print(json.dumps([run(j) for j in json.load(sys.stdin)]))
