"""Reference side of the NIfTI tests and benchmark: nibabel does the reading.

dump  : stdin = JSON list of paths; stdout = JSON list of {dtype, shape, md5, affine}
        md5 is over the voxel bytes in x-fastest order with channels (dims 4..)
        slowest, i.e. the layout of a medseg Volume; rgb24 becomes 3 planar
        channels and int64/uint64 become int32 when in range else float64.
make  : argv[2] = directory; writes synthetic NIfTI files covering dtypes,
        versions, endianness, xforms and scaling; stdout = JSON list of paths.
bench : stdin = JSON {paths, rounds}; stdout = JSON list of seconds per round.
"""
import hashlib
import json
import os
import sys
import time

import nibabel as nib
import numpy as np


def volume_array(img):
    d = np.asanyarray(img.dataobj)
    if d.dtype.names:  # rgb24
        d = np.stack([d[n] for n in d.dtype.names], axis=-1)
        if d.ndim > 4:
            d = d.reshape(d.shape[:3] + (-1,), order='F')
    if d.dtype.kind in 'iu' and d.dtype.itemsize == 8:
        fits = d.size == 0 or (d.min() >= -2**31 and d.max() <= 2**31 - 1)
        d = d.astype(np.int32 if fits else np.float64)
    return d


def dump(paths):
    out = []
    for p in paths:
        img = nib.load(p)
        d = volume_array(img)
        b = np.asarray(d, dtype=d.dtype.newbyteorder('<')).tobytes(order='F')
        out.append({'dtype': d.dtype.newbyteorder('=').name, 'shape': list(d.shape),
                    'md5': hashlib.md5(b).hexdigest(), 'affine': img.affine.ravel().tolist()})
    return out


def make(dirname):
    rng = np.random.default_rng(5)
    paths = []
    oblique = np.array([[0.9, -0.3, 0.1, 10], [0.3, 0.95, 0.05, -20], [-0.1, 0.0, 2.5, 30], [0, 0, 0, 1]])

    def save(img, name):
        p = os.path.join(dirname, name)
        nib.save(img, p)
        paths.append(p)

    for dt in ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'int64', 'uint64']:
        info = np.iinfo(dt) if dt[0] in 'iu' else None
        lo, hi = (max(info.min, -1000), min(info.max, 1000)) if info else (-1000, 1000)
        a = rng.uniform(lo, hi, size=(5, 4, 3)).astype(dt)
        for ver, cls in [(1, nib.Nifti1Image), (2, nib.Nifti2Image)]:
            img = cls(a, oblique, dtype=a.dtype)
            save(img, f'{dt}_v{ver}.nii.gz')
    # int64 out of int32 range -> float64
    save(nib.Nifti1Image(np.array([[[2**40, -3]]], dtype=np.int64), np.eye(4), dtype=np.int64), 'int64_big.nii')
    # big endian, both versions
    for ver, cls, hcls in [(1, nib.Nifti1Image, nib.Nifti1Header), (2, nib.Nifti2Image, nib.Nifti2Header)]:
        a = rng.normal(size=(6, 5, 4)).astype('>f4')
        save(cls(a, oblique, hcls(endianness='>')), f'be_v{ver}.nii')
        a = rng.integers(-300, 300, size=(6, 5, 4)).astype('>i2')
        save(cls(a, oblique, hcls(endianness='>')), f'be_i16_v{ver}.nii.gz')
    # 2D and 4D
    save(nib.Nifti1Image(rng.integers(0, 255, size=(7, 5)).astype(np.uint8), np.diag([0.5, 0.7, 1, 1])), 'twod.nii')
    save(nib.Nifti1Image(rng.normal(size=(4, 3, 2, 3)).astype(np.float32), oblique), 'fourd.nii.gz')
    save(nib.Nifti2Image(rng.normal(size=(4, 3, 2, 2, 2)).astype(np.float32), oblique), 'fived.nii')
    # rgb24
    rgb = np.zeros((4, 3, 2), dtype=[('R', 'u1'), ('G', 'u1'), ('B', 'u1')])
    for n in 'RGB':
        rgb[n] = rng.integers(0, 255, size=(4, 3, 2))
    save(nib.Nifti1Image(rgb, oblique), 'rgb24.nii')
    # scaling (int -> float64, float -> float64), slope 0 = none, nan slope = none
    a = rng.integers(-100, 100, size=(5, 4, 3)).astype(np.int16)
    for name, sl, it in [('scaled', 0.5, -3.0), ('slope_only', 3.0, 0.0), ('inter_only', 1.0, 7.0), ('slope0', 0.0, 5.0)]:
        img = nib.Nifti1Image(a, np.eye(4))
        img.set_data_dtype(np.int16)
        save(img, f'{name}.nii')
        raw = bytearray(open(paths[-1], 'rb').read())
        raw[112:120] = np.array([sl, it], dtype='<f4').tobytes()
        open(paths[-1], 'wb').write(bytes(raw))
    af = rng.normal(size=(5, 4, 3)).astype(np.float32)
    img = nib.Nifti1Image(af, np.eye(4))
    save(img, 'float_scaled.nii')
    raw = bytearray(open(paths[-1], 'rb').read())
    raw[112:120] = np.array([2.0, 1.5], dtype='<f4').tobytes()
    open(paths[-1], 'wb').write(bytes(raw))
    # xform precedence: qform only (qfac -1), neither (base affine), sform wins over qform
    a = rng.integers(0, 9, size=(6, 5, 4)).astype(np.uint8)
    img = nib.Nifti1Image(a, None)
    flipz = oblique @ np.diag([1, 1, -1, 1])
    img.set_qform(flipz, code=1)
    img.set_sform(None, code=0)
    save(img, 'qform_only.nii')
    img = nib.Nifti1Image(a, None)
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    img.header.set_zooms((2.0, 3.0, 4.0))
    save(img, 'base_affine.nii')
    img = nib.Nifti1Image(a, np.diag([2, 2, 2, 1]))
    img.set_qform(oblique, code=1)
    img.set_sform(np.diag([-2, 3, 4, 1]), code=2)
    save(img, 'sform_wins.nii')
    return paths


def bench(spec):
    times = []
    for _ in range(spec['rounds']):
        t0 = time.perf_counter()
        for p in spec['paths']:
            np.asanyarray(nib.load(p).dataobj)
        times.append(time.perf_counter() - t0)
    return times


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'dump':
        print(json.dumps(dump(json.load(sys.stdin))))
    elif mode == 'make':
        print(json.dumps(make(sys.argv[2])))
    elif mode == 'bench':
        print(json.dumps(bench(json.load(sys.stdin))))
