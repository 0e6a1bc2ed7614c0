import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dataPath } from '../testing/data.ts';
import { MedsegIoError } from './errors.ts';
import { composeAffine } from './geometry.ts';
import { readImage2d } from './image2d.ts';
import { readNifti } from './nifti.ts';
import { readNrrd } from './nrrd.ts';
import { readVolume, writeVolume } from './read.ts';
import { voxelTypeOf } from './volume.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-read-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const nii = dataPath('msd-hippocampus', 'labels', readdirSync(dataPath('msd-hippocampus', 'labels')).sort()[0]!);
const nrrd = dataPath('pyradiomics-nrrd', 'brain1_label.nrrd');
const tif = dataPath('drive', 'training', 'images', '21_training.tif');
const gif = dataPath('drive', 'training', 'mask', '21_training_mask.gif');
const png = dataPath('isbi2012-em', 'masks', '0.png');

test('readVolume dispatches by extension and, without one, by magic bytes', async () => {
  const pairs: Array<[string, () => Promise<unknown>]> = [
    [nii, () => readNifti(nii)],
    [nrrd, () => readNrrd(nrrd)],
    [tif, () => readImage2d(tif)],
    [gif, () => readImage2d(gif)],
    [png, () => readImage2d(png)],
  ];
  for (const [p, direct] of pairs) {
    const a = await readVolume(p);
    const b = (await direct()) as typeof a;
    assert.deepEqual(Array.from(a.data), Array.from(b.data), p);
    const renamed = join(tmp, `noext_${p.split('/').pop()!.replace(/\./g, '_')}`);
    copyFileSync(p, renamed);
    const c = await readVolume(renamed);
    assert.deepEqual([c.size, c.channels, voxelTypeOf(c.data)], [a.size, a.channels, voxelTypeOf(a.data)], renamed);
    assert.deepEqual(composeAffine(c), composeAffine(a));
  }
});

test('writeVolume round trips .nii, .nii.gz, .nrrd and .png through readVolume', async () => {
  const vol = await readVolume(nrrd);
  for (const ext of ['.nii', '.nii.gz', '.nrrd']) {
    const p = join(tmp, `out${ext}`);
    await writeVolume(p, vol);
    const back = await readVolume(p);
    assert.deepEqual(Array.from(back.data), Array.from(vol.data), ext);
    composeAffine(back).forEach((x, k) => assert.ok(Math.abs(x - composeAffine(vol)[k]!) < 1e-4, ext));
  }
  const img = await readVolume(tif);
  await writeVolume(join(tmp, 'o.png'), img);
  assert.deepEqual(Array.from((await readVolume(join(tmp, 'o.png'))).data), Array.from(img.data));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('missing files, unknown formats and DICOM without its module give clear errors', async () => {
  const code = async (p: Promise<unknown>, c: string) => assert.rejects(p, (e: unknown) => e instanceof MedsegIoError && e.code === c);
  await code(readVolume(join(tmp, 'missing.nii.gz')), 'NOT_FOUND');
  await code(readVolume(join(tmp, 'missing')), 'NOT_FOUND');
  copyFileSync(dataPath('pyradiomics-nrrd', 'PROVENANCE.txt'), join(tmp, 'notes.xyz'));
  await code(readVolume(join(tmp, 'notes.xyz')), 'UNSUPPORTED');
  await code(writeVolume(join(tmp, 'x.mha'), await readVolume(nrrd)), 'UNSUPPORTED');
  const dicomDir = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
  if (!existsSync(new URL('./dicom/index.ts', import.meta.url))) {
    await code(readVolume(dicomDir), 'UNSUPPORTED');
  } else {
    // provided by the DICOM module: a volume or one of our typed errors, nothing else
    try {
      const v = await readVolume(dicomDir);
      assert.equal(v.data.length, v.size[0] * v.size[1] * v.size[2] * v.channels);
    } catch (e) {
      assert.ok(e instanceof MedsegIoError, String(e));
    }
  }
});
