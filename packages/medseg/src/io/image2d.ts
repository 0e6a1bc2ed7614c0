/**
 * 2D image formats -> Volume: sniffs the format from the magic bytes and hands
 * the bytes to its codec (image2d-png/gif/bmp/jpeg/tiff.ts); see
 * image2d-common.ts for the Volume they return and the palette rule.
 */
import { readFile } from 'node:fs/promises';
import { decodeBmp } from './image2d-bmp.ts';
import type { Image2dOptions } from './image2d-common.ts';
import { decodeGif } from './image2d-gif.ts';
import { decodeJpeg } from './image2d-jpeg.ts';
import { decodePng, encodePng, PNG_SIG } from './image2d-png.ts';
import { decodeTiff } from './image2d-tiff.ts';
import { MedsegIoError } from './errors.ts';
import { fsError } from './limits.ts';
import type { Volume } from './volume.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

export type Image2dFormat = 'png' | 'jpeg' | 'tiff' | 'bmp' | 'gif';

export function sniffImage2d(buf: Uint8Array): Image2dFormat | undefined {
  if (PNG_SIG.every((b, i) => buf[i] === b)) return 'png';
  if (buf[0] === 0xff && buf[1] === 0xd8) return 'jpeg';
  if ((buf[0] === 0x49 && buf[1] === 0x49 && buf[2] === 42) || (buf[0] === 0x4d && buf[1] === 0x4d && buf[3] === 42)) return 'tiff';
  if (buf[0] === 0x42 && buf[1] === 0x4d) return 'bmp';
  if (buf[0] === 0x47 && buf[1] === 0x49 && buf[2] === 0x46) return 'gif';
  return undefined;
}

export function decodeImage2d(buf: Uint8Array, opts: Image2dOptions = {}): Volume {
  const f = sniffImage2d(buf);
  try {
    switch (f) {
      case 'png':
        return decodePng(buf, opts);
      case 'jpeg':
        return decodeJpeg(buf, opts);
      case 'tiff':
        return decodeTiff(buf, opts);
      case 'bmp':
        return decodeBmp(buf, opts);
      case 'gif':
        return decodeGif(buf, opts);
      default:
        throw new MedsegIoError('BAD_MAGIC', 'not a PNG, JPEG, TIFF, BMP or GIF file', opts.path);
    }
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    // a decoder tripping over corrupt input (index past the end, ...) is a corrupt file
    throw new MedsegIoError('CORRUPT', `${f}: ${(e as Error)?.message ?? String(e)}`, opts.path);
  }
}

export async function readImage2d(path: string, opts: Omit<Image2dOptions, 'path'> = {}): Promise<Volume> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fsError(e, path);
  }
  return decodeImage2d(buf, { ...opts, path });
}

export async function writePng(path: string, v: Volume): Promise<void> {
  await writeFileAtomic(path, encodePng(v));
}
