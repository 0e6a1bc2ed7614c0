/**
 * importPairedFolders with label masks saved as colour images: RGB / RGBA
 * masks whose channels agree import as one-channel label maps; disagreeing
 * channels are refused. The masks are written by PIL, independent of our
 * codecs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MedsegIoError } from '../io/errors.ts';
import { readVolume } from '../io/read.ts';
import { runPython } from '../testing/python.ts';
import { readDataset } from './dataset.ts';
import { importPairedFolders } from './import.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-import-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const W = 7;
const H = 5;
/** Foreground (255) where (x + 2y) % 3 == 0: not symmetric, so a transposed or flipped read would show. */
const isForeground = (x: number, y: number) => (x + 2 * y) % 3 === 0;

/** Writes images/<stem>.png (gray) and masks/<stem><ext> in the given PIL mode; `disagree` sets G != R at one pixel. */
function writeCase(dir: string, stem: string, ext: string, mode: 'RGB' | 'RGBA', disagree = false): void {
  runPython([
    '-c',
    `
import sys, numpy as np
from PIL import Image
d, stem, ext, mode, disagree = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == '1'
W, H = ${W}, ${H}
y, x = np.mgrid[0:H, 0:W]
m = np.where((x + 2 * y) % 3 == 0, 255, 0).astype(np.uint8)
Image.fromarray((x * 10 + y).astype(np.uint8), 'L').save(f'{d}/images/{stem}.png')
ch = [m, m.copy(), m.copy()] + ([np.full_like(m, 255)] if mode == 'RGBA' else [])
if disagree: ch[1][2, 3] = 128
Image.fromarray(np.stack(ch, -1), mode).save(f'{d}/masks/{stem}{ext}')
im = Image.open(f'{d}/masks/{stem}{ext}')
assert im.mode == mode and (ext != '.bmp' or im.info.get('compression', 0) == 0), (im.mode, im.info)
`,
    dir,
    stem,
    ext,
    mode,
    disagree ? '1' : '0',
  ]);
}

function folders(name: string): string {
  const dir = join(tmp, name);
  runPython(['-c', 'import os, sys; [os.makedirs(os.path.join(sys.argv[1], s)) for s in ("images", "masks")]', dir]);
  return dir;
}

test('import paired: 24-bit BMP, RGB PNG and RGBA PNG masks with equal channels become one-channel label maps', async () => {
  const src = folders('agree');
  writeCase(src, 'bmp24', '.bmp', 'RGB');
  writeCase(src, 'rgb', '.png', 'RGB');
  writeCase(src, 'rgba', '.png', 'RGBA');
  for (const stem of ['bmp24', 'rgb']) assert.equal((await readVolume(join(src, 'masks', `${stem}${stem === 'bmp24' ? '.bmp' : '.png'}`))).channels, 3);
  const out = await importPairedFolders(join(src, 'images'), join(src, 'masks'), join(tmp, 'agree-out'), { name: 'rgb-masks' });
  const ds = readDataset(out);
  assert.deepEqual(ds.labelMapping, { 0: 0, 255: 1 });
  assert.deepEqual(ds.training.map((c) => c.id).sort(), ['bmp24', 'rgb', 'rgba']);
  for (const c of ds.training) {
    const lab = await readVolume(c.labelPath!);
    assert.equal(lab.channels, 1, c.id);
    assert.deepEqual(lab.size, [W, H, 1], c.id);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) assert.equal(lab.data[y * W + x], isForeground(x, y) ? 1 : 0, `${c.id} (${x}, ${y})`);
  }
});

test('import paired: a colour mask whose channels disagree is refused with BAD_DATA, the pixel and a hint', async () => {
  const src = folders('disagree');
  writeCase(src, 'ok', '.png', 'RGB');
  writeCase(src, 'coloured', '.bmp', 'RGB', true);
  await assert.rejects(
    importPairedFolders(join(src, 'images'), join(src, 'masks'), join(tmp, 'disagree-out'), { name: 'bad' }),
    (e: unknown) =>
      e instanceof MedsegIoError &&
      e.code === 'BAD_DATA' &&
      e.path === join(src, 'masks', 'coloured.bmp') &&
      /channel 1 differs from channel 0 at \(x 3, y 2\): 0, 128, 0/.test(e.message) &&
      /grayscale or palette/.test(e.message),
  );
});
