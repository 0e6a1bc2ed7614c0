/** BMP (uncompressed 1/4/8/24/32-bit), hand-written so palette indices stay indices and sizes are checked before allocating. */
import { MedsegIoError } from './errors.ts';
import { applyPalette, makeVolume, type Image2dOptions } from './image2d-common.ts';
import { checkAllocation, resolveLimits } from './limits.ts';
import type { Volume } from './volume.ts';

export function decodeBmp(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  if (buf.length < 2 || buf[0] !== 0x42 || buf[1] !== 0x4d) throw new MedsegIoError('BAD_MAGIC', 'not a BMP file', path);
  if (buf.length < 26) throw new MedsegIoError('TRUNCATED', 'BMP header cut short', path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dataOff = dv.getUint32(10, true);
  const hsize = dv.getUint32(14, true);
  let w: number,
    h: number,
    bpp: number,
    comp = 0,
    ncolors = 0;
  if (hsize === 12) {
    w = dv.getUint16(18, true);
    h = dv.getInt16(20, true);
    bpp = dv.getUint16(24, true);
  } else if (hsize >= 40) {
    if (buf.length < 54) throw new MedsegIoError('TRUNCATED', 'BMP header cut short', path);
    w = dv.getInt32(18, true);
    h = dv.getInt32(22, true);
    bpp = dv.getUint16(28, true);
    comp = dv.getUint32(30, true);
    ncolors = dv.getUint32(46, true);
  } else throw new MedsegIoError('CORRUPT', `BMP header size ${hsize}`, path);
  const topDown = h < 0;
  h = Math.abs(h);
  if (w < 1 || h < 1) throw new MedsegIoError('BAD_DATA', `BMP size ${w}x${h}`, path);
  if (![1, 4, 8, 24, 32].includes(bpp)) throw new MedsegIoError('UNSUPPORTED', `BMP with ${bpp} bits per pixel`, path);
  if (comp !== 0 && !(comp === 3 && bpp === 32)) throw new MedsegIoError('UNSUPPORTED', `compressed BMP (method ${comp})`, path);
  checkAllocation(w * h, bpp > 8 ? 3 : 1, limits, path);
  const stride = Math.ceil((w * bpp) / 32) * 4;
  if (dataOff + stride * h > buf.length) throw new MedsegIoError('TRUNCATED', 'BMP pixel data cut short', path);
  const px = w * h;
  const row = (y: number) => dataOff + (topDown ? y : h - 1 - y) * stride;
  if (bpp <= 8) {
    const n = ncolors || 1 << bpp;
    const entry = hsize === 12 ? 3 : 4;
    const palOff = 14 + hsize;
    if (n > 256 || palOff + n * entry > buf.length) throw new MedsegIoError('CORRUPT', 'BMP palette is invalid', path);
    const pal = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) pal[i * 3 + c] = buf[palOff + i * entry + 2 - c]!; // BGR -> RGB
    const idx = new Uint8Array(px);
    for (let y = 0; y < h; y++) {
      const r = row(y);
      for (let x = 0; x < w; x++) {
        const bit = x * bpp;
        idx[y * w + x] = (buf[r + (bit >> 3)]! >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
      }
    }
    return applyPalette(idx, pal, w, h, opts.palette, 'bmp', path);
  }
  if (comp === 3) {
    const masks = [dv.getUint32(54, true), dv.getUint32(58, true), dv.getUint32(62, true)];
    if (masks[0] !== 0xff0000 || masks[1] !== 0xff00 || masks[2] !== 0xff) throw new MedsegIoError('UNSUPPORTED', 'BMP with non-standard bit fields', path);
  }
  const out = new Uint8Array(px * 3);
  const B = bpp / 8;
  for (let y = 0; y < h; y++) {
    const r = row(y);
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[c * px + y * w + x] = buf[r + x * B + 2 - c]!;
  }
  return makeVolume(out, w, h, 3, 'bmp', path);
}
