/** TIFF (first image; 1/8/16-bit unsigned) through utif2, with its directories checked first. */
import UTIF from 'utif2';
import { MedsegIoError } from './errors.ts';
import { applyPalette, makeVolume, type Image2dOptions } from './image2d-common.ts';
import { checkAllocation, resolveLimits } from './limits.ts';
import type { Volume } from './volume.ts';

export function decodeTiff(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  const le = buf[0] === 0x49 && buf[1] === 0x49 && buf[2] === 42 && buf[3] === 0;
  const be = buf[0] === 0x4d && buf[1] === 0x4d && buf[2] === 0 && buf[3] === 42;
  if (!le && !be) throw new MedsegIoError('BAD_MAGIC', 'not a TIFF file', path);
  validateTiffDirectories(buf, le, path);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  let ifd: UTIF.IFD;
  try {
    const ifds = UTIF.decode(ab);
    if (!ifds.length) throw new MedsegIoError('CORRUPT', 'TIFF has no image directory', path);
    ifd = ifds[0]!;
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    throw new MedsegIoError('CORRUPT', `TIFF: ${(e as Error).message ?? String(e)}`, path);
  }
  const tag = (t: number, d: number) => {
    const v = ifd[`t${t}`] as number[] | undefined;
    return v && typeof v[0] === 'number' ? v[0] : d;
  };
  const w = tag(256, 0),
    h = tag(257, 0),
    bps = tag(258, 1),
    spp = tag(277, 1),
    photo = tag(262, 1);
  const planar = tag(284, 1),
    fmt = tag(339, 1);
  if (ifd.t256 === undefined || ifd.t257 === undefined) throw new MedsegIoError('CORRUPT', 'TIFF directory has no image width/length', path);
  if (!(w >= 1 && h >= 1 && Number.isSafeInteger(w) && Number.isSafeInteger(h))) throw new MedsegIoError('BAD_DATA', `TIFF size ${w}x${h}`, path);
  if (![1, 8, 16].includes(bps) || fmt !== 1)
    throw new MedsegIoError('UNSUPPORTED', `TIFF with ${bps}-bit samples of format ${fmt} (1/8/16-bit unsigned are supported)`, path);
  if (![1, 2, 3].includes(photo)) throw new MedsegIoError('UNSUPPORTED', `TIFF photometric interpretation ${photo}`, path);
  if (spp < 1 || spp > 4 || (planar !== 1 && spp > 1)) throw new MedsegIoError('UNSUPPORTED', `TIFF with ${spp} samples, planar config ${planar}`, path);
  checkAllocation(w * h, spp * Math.max(1, bps / 8) * 2, limits, path);
  try {
    UTIF.decodeImage(ab, ifd);
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `TIFF: ${(e as Error).message ?? String(e)}`, path);
  }
  const raw = ifd.data as Uint8Array | undefined;
  const px = w * h;
  const rowBytes = Math.ceil((w * spp * bps) / 8);
  if (!raw || raw.length < rowBytes * h) throw new MedsegIoError('TRUNCATED', 'TIFF pixel data is shorter than the image', path);
  const outCh = photo === 2 ? 3 : 1;
  if (photo === 2 && spp < 3) throw new MedsegIoError('CORRUPT', 'RGB TIFF with fewer than 3 samples', path);
  const out = bps === 16 ? new Uint16Array(px * outCh) : new Uint8Array(px * outCh);
  for (let y = 0; y < h; y++) {
    const r = y * rowBytes;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < outCh; c++) {
        const s = x * spp + c;
        let v: number;
        if (bps === 8) v = raw[r + s]!;
        else if (bps === 16)
          v = raw[r + 2 * s]! | (raw[r + 2 * s + 1]! << 8); // utif2 hands 16-bit samples back little-endian
        else v = (raw[r + (s >> 3)]! >> (7 - (s & 7))) & 1;
        out[c * px + y * w + x] = v;
      }
    }
  }
  if (photo === 3) {
    const cmap = ifd.t320 as number[] | undefined;
    const n = 1 << bps;
    if (!cmap || cmap.length < 3 * n || bps === 16) throw new MedsegIoError('CORRUPT', 'palette TIFF without a usable colour map', path);
    const pal = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) pal[i * 3 + c] = cmap[c * n + i]! >> 8;
    return applyPalette(out as Uint8Array, pal, w, h, opts.palette, 'tiff', path);
  }
  return makeVolume(out, w, h, outCh, 'tiff', path);
}

const TIFF_TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];
const TIFF_SUB_IFD_TAGS = new Set([330, 34665, 34853, 40965]);

/**
 * utif2 trusts the directory: a corrupt entry count or value count makes it
 * loop and allocate for as long as the number says, and a cyclic IFD chain
 * never ends. Walk every directory it would visit first and reject anything
 * that does not fit inside the file.
 */
function validateTiffDirectories(buf: Uint8Array, le: boolean, path?: string): void {
  if (buf.length < 8) throw new MedsegIoError('TRUNCATED', 'TIFF header cut short', path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const seen = new Set<number>();
  const queue = [dv.getUint32(4, le)];
  while (queue.length) {
    const off = queue.shift()!;
    if (off === 0) continue;
    if (seen.has(off) || seen.size > 64) throw new MedsegIoError('CORRUPT', 'TIFF directory chain loops or is too long', path);
    seen.add(off);
    if (off + 2 > buf.length) throw new MedsegIoError('TRUNCATED', 'TIFF directory offset past the end of the file', path);
    const n = dv.getUint16(off, le);
    if (off + 2 + 12 * n + 4 > buf.length) throw new MedsegIoError('TRUNCATED', 'TIFF directory runs past the end of the file', path);
    for (let i = 0; i < n; i++) {
      const e = off + 2 + 12 * i;
      const tag = dv.getUint16(e, le);
      const type = dv.getUint16(e + 2, le);
      const count = dv.getUint32(e + 4, le);
      const size = TIFF_TYPE_BYTES[type];
      if (!size) throw new MedsegIoError('CORRUPT', `TIFF tag ${tag} has unknown type ${type}`, path);
      const bytes = size * count;
      if (bytes > 4) {
        const at = dv.getUint32(e + 8, le);
        if (at + bytes > buf.length) throw new MedsegIoError('TRUNCATED', `TIFF tag ${tag} values run past the end of the file`, path);
      }
      if (TIFF_SUB_IFD_TAGS.has(tag) && (type === 4 || type === 13)) {
        const at = bytes > 4 ? dv.getUint32(e + 8, le) : e + 8;
        for (let k = 0; k < Math.min(count, 64); k++) queue.push(dv.getUint32(at + 4 * k, le));
      }
    }
    queue.push(dv.getUint32(off + 2 + 12 * n, le));
  }
}
