"""Independent NRRD reference for tests and the benchmark (numpy only; pynrrd and
SimpleITK are not in Debian). Handles attached/detached, raw/gzip/ascii, the
LPS/RAS/LAS spaces and 'none' (channel) axes, which it moves last.

dump  : stdin = JSON list of paths; stdout = JSON list of {dtype, shape, md5, affine}
        (affine = 4x4 LPS, row-major; md5 over x-fastest bytes, channels slowest)
bench : stdin = JSON {paths, rounds}; stdout = JSON list of seconds per round.
"""
import gzip
import hashlib
import json
import os
import re
import sys
import time

import numpy as np

DTYPES = {'short': 'i2', 'int16': 'i2', 'ushort': 'u2', 'unsigned short': 'u2', 'uint16': 'u2',
          'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'unsigned int': 'u4', 'uint32': 'u4',
          'uchar': 'u1', 'unsigned char': 'u1', 'uint8': 'u1', 'signed char': 'i1', 'int8': 'i1',
          'float': 'f4', 'double': 'f8'}
FLIP = {'left-posterior-superior': [1, 1, 1], 'right-anterior-superior': [-1, -1, 1], 'left-anterior-superior': [1, -1, 1]}


def read(path):
    raw = open(path, 'rb').read()
    sep = raw.index(b'\n\n') if b'\n\n' in raw else len(raw)
    fields = {}
    for line in raw[:sep].decode('latin1').splitlines()[1:]:
        if line.startswith('#') or ':=' in line.split(': ')[0]:
            continue
        k, v = line.split(': ', 1)
        fields[k.strip()] = v.strip()
    sizes = [int(s) for s in fields['sizes'].split()]
    if 'data file' in fields:
        body = open(os.path.join(os.path.dirname(path), fields['data file']), 'rb').read()
    else:
        body = raw[sep + 2:]
    enc = fields['encoding']
    dt = np.dtype(DTYPES[fields['type']])
    dt = dt.newbyteorder('>' if fields.get('endian') == 'big' else '<')
    n = int(np.prod(sizes))
    if enc in ('gzip', 'gz'):
        arr = np.frombuffer(gzip.decompress(body), dtype=dt, count=n)
    elif enc == 'raw':
        arr = np.frombuffer(body, dtype=dt, count=n)
    else:
        arr = np.array(body.decode('latin1').split(), dtype=np.float64)[:n].astype(dt)
    arr = arr.reshape(sizes, order='F')
    flip = np.array(FLIP[fields['space']], dtype=float)
    dirs = re.findall(r'\([^)]*\)|none', fields['space directions'])
    spatial = [i for i, d in enumerate(dirs) if d != 'none']
    chan = [i for i, d in enumerate(dirs) if d == 'none']
    arr = np.transpose(arr, spatial + chan)
    aff = np.eye(4)
    for j, i in enumerate(spatial):
        aff[:3, j] = np.array([float(x) for x in dirs[i][1:-1].split(',')]) * flip
    aff[:3, 3] = np.array([float(x) for x in fields['space origin'][1:-1].split(',')]) * flip
    return arr, aff


def dump(paths):
    out = []
    for p in paths:
        arr, aff = read(p)
        b = arr.astype(arr.dtype.newbyteorder('<')).tobytes(order='F')
        out.append({'dtype': arr.dtype.newbyteorder('=').name, 'shape': list(arr.shape),
                    'md5': hashlib.md5(b).hexdigest(), 'affine': aff.ravel().tolist()})
    return out


def bench(spec):
    times = []
    for _ in range(spec['rounds']):
        t0 = time.perf_counter()
        for p in spec['paths']:
            read(p)
        times.append(time.perf_counter() - t0)
    return times


if __name__ == '__main__':
    if sys.argv[1] == 'dump':
        print(json.dumps(dump(json.load(sys.stdin))))
    else:
        print(json.dumps(bench(json.load(sys.stdin))))
