/** JPEG through jpeg-js; gray JPEGs give one channel. */
import jpeg from 'jpeg-js';
import { MedsegIoError } from './errors.ts';
import { makeVolume, type Image2dOptions } from './image2d-common.ts';
import { resolveLimits } from './limits.ts';
import type { Volume } from './volume.ts';

function jpegComponents(buf: Uint8Array): number {
  let p = 2;
  while (p + 9 < buf.length) {
    if (buf[p] !== 0xff) {
      p++;
      continue;
    }
    const m = buf[p + 1]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return buf[p + 9]!;
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) {
      p += m === 0xff ? 1 : 2;
      continue;
    }
    p += 2 + ((buf[p + 2]! << 8) | buf[p + 3]!);
  }
  return 3;
}

export function decodeJpeg(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const path = opts.path;
  const limits = resolveLimits(opts.limits);
  if (buf.length < 3 || buf[0] !== 0xff || buf[1] !== 0xd8) throw new MedsegIoError('BAD_MAGIC', 'not a JPEG file', path);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(buf, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: limits.maxBytes / 3 / 1e6,
      maxMemoryUsageInMB: Math.max(16, (limits.maxBytes * 2) / 2 ** 20),
    });
  } catch (e) {
    const m = (e as Error).message ?? String(e);
    if (/limit exceeded/.test(m)) throw new MedsegIoError('TOO_LARGE', `JPEG: ${m}`, path);
    throw new MedsegIoError('CORRUPT', `JPEG: ${m}`, path);
  }
  const { width: w, height: h } = img;
  const px = w * h;
  if (!(px > 0) || img.data.length < px * 3) throw new MedsegIoError('CORRUPT', 'JPEG decoded to no pixels', path);
  const ch = jpegComponents(buf) === 1 ? 1 : 3;
  const out = new Uint8Array(px * ch);
  for (let i = 0; i < px; i++) for (let c = 0; c < ch; c++) out[c * px + i] = img.data[i * 3 + c]!;
  return makeVolume(out, w, h, ch, 'jpeg', path);
}
