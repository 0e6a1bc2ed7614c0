"""PIL side of the 2D image tests.

dump : stdin = JSON list of paths; stdout = JSON list of {shape: [w, h, channels], dtype, md5, sum}
       md5 over planar bytes (channel slowest, then row, column fastest) with the
       medseg rules: alpha dropped; palette images -> gray levels if the palette is
       all gray, else indices; 1-bit -> 0/1; 16-bit gray -> uint16.
make : argv[2] = directory; writes PNG/JPEG/TIFF/BMP/GIF variants; stdout = JSON list of paths.
"""
import hashlib
import json
import os
import sys

import numpy as np
from PIL import Image


def to_array(im):
    if im.mode == 'P':
        pal = np.array(im.getpalette()).reshape(-1, 3)
        if (pal[:, 0] == pal[:, 1]).all() and (pal[:, 1] == pal[:, 2]).all():
            return np.array(im.convert('L'))
        return np.array(im)
    if im.mode in ('RGBA', 'RGBX'):
        return np.array(im)[..., :3]
    if im.mode == 'LA':
        return np.array(im)[..., 0]
    if im.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        return np.array(im).astype(np.uint16)
    if im.mode == '1':  # BMP stores 1-bit as a 2-entry palette: gray rule applies (0/255)
        return np.array(im.convert('L')) if im.format == 'BMP' else np.array(im).astype(np.uint8)
    return np.array(im)


def dump(paths):
    out = []
    for p in paths:
        a = to_array(Image.open(p))
        planar = a.transpose(2, 0, 1) if a.ndim == 3 else a[None]
        b = np.ascontiguousarray(planar).astype(planar.dtype.newbyteorder('<')).tobytes()
        out.append({'shape': [a.shape[1], a.shape[0], planar.shape[0]], 'dtype': a.dtype.name,
                    'md5': hashlib.md5(b).hexdigest(), 'sum': float(planar.astype(np.float64).sum()),
                    'planar': planar.ravel().tolist() if a.size <= 20000 else None})
    return out


def make(d):
    rng = np.random.default_rng(3)
    h, w = 37, 53
    gray = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    # a smooth image for JPEG (noise is a poor JPEG test)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 4, yy * 6, (xx + yy) * 2 + 40 * np.sin(xx / 5.0) + 50], -1).clip(0, 255).astype(np.uint8)
    g16 = rng.integers(0, 65536, size=(h, w)).astype(np.uint16)
    labels = rng.integers(0, 5, size=(h, w), dtype=np.uint8)
    color_pal = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0] + [7] * (3 * 251)
    paths = []

    def save(im, name, **kw):
        p = os.path.join(d, name)
        im.save(p, **kw)
        paths.append(p)

    save(Image.fromarray(gray), 'gray8.png')
    save(Image.fromarray(g16), 'gray16.png')
    save(Image.fromarray(rgb), 'rgb8.png', optimize=True)
    save(Image.fromarray(np.dstack([rgb, gray])), 'rgba8.png')
    save(Image.fromarray(np.dstack([gray, 255 - gray]), 'LA'), 'la8.png')
    p = Image.fromarray(labels, 'P'); p.putpalette(color_pal); save(p, 'pal_color.png')
    p = Image.fromarray(labels, 'P'); p.putpalette([v for i in range(256) for v in (i * 40 % 256,) * 3]); save(p, 'pal_gray.png')
    save(Image.fromarray(gray > 128), 'bilevel.png')
    p = Image.fromarray(labels, 'P'); p.putpalette(color_pal); save(p, 'pal4bit.png', bits=4)
    save(Image.fromarray(smooth), 'rgb.jpg', quality=95, subsampling=0)  # 4:4:4: chroma upsampling filters differ between decoders
    save(Image.fromarray(smooth[..., 0]), 'gray.jpg', quality=95)
    save(Image.fromarray(gray), 'gray8.tif')
    save(Image.fromarray(g16), 'gray16.tif')
    save(Image.fromarray(rgb), 'rgb_lzw.tif', compression='tiff_lzw')
    save(Image.fromarray(rgb), 'rgb_packbits.tif', compression='packbits')
    save(Image.fromarray(rgb), 'rgb_deflate.tif', compression='tiff_adobe_deflate')
    save(Image.fromarray(g16.astype('>u2'), 'I;16B'), 'gray16be.tif')
    save(Image.fromarray(gray > 100), 'bilevel.tif')
    save(Image.fromarray(rgb), 'rgb24.bmp')
    p = Image.fromarray(labels, 'P'); p.putpalette(color_pal); save(p, 'pal8.bmp')
    save(Image.fromarray(gray), 'gray8.bmp')
    save(Image.fromarray(gray > 90), 'bilevel.bmp')
    p = Image.fromarray(labels, 'P'); p.putpalette(color_pal); save(p, 'pal.gif')
    save(Image.fromarray(gray), 'gray.gif')
    save(Image.fromarray(rgb).convert('P', palette=Image.ADAPTIVE, colors=200), 'adaptive.gif', interlace=True)
    return paths


if __name__ == '__main__':
    if sys.argv[1] == 'dump':
        print(json.dumps(dump(json.load(sys.stdin))))
    else:
        print(json.dumps(make(sys.argv[2])))
