import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPath } from '../testing/data.ts';
import { MedsegIoError } from '../io/errors.ts';
import { readDataset, parseLabels } from './dataset.ts';
import { importDrive, importIsbi2012, importMsdHippocampus } from './import.ts';
import { runPython } from '../testing/python.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-dataset-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function py(code: string): string {
  return runPython(['-c', code]);
}

test('hippocampus: import the bare images/labels folder, read it back as an nnU-Net dataset', async () => {
  const src = dataPath('msd-hippocampus');
  assert.throws(
    () => readDataset(src),
    (e: unknown) => e instanceof MedsegIoError && e.code === 'NOT_FOUND' && /importImageLabelFolders|import/.test(e.message),
  );
  const out = await importMsdHippocampus(src, join(tmp, 'hippo'), { testIds: ['hippocampus_001'] });
  const ds = readDataset(out);
  assert.equal(ds.training.length, 173);
  assert.equal(ds.test.length, 1);
  assert.deepEqual(ds.channels, ['MRI']);
  assert.deepEqual(ds.labels, { 0: 'background', 1: 'Anterior', 2: 'Posterior' });
  assert.deepEqual(ds.labelMapping, { 0: 0, 1: 1, 2: 2 });
  const c = ds.training.find((x) => x.id === 'hippocampus_003')!;
  assert.match(c.imagePaths[0]!, /imagesTr\/hippocampus_003_0000\.nii\.gz$/);
  // Independent check with nibabel: the written label and image equal the originals, same affine.
  const r = py(`
import nibabel as nib, numpy as np
a=nib.load('${src}/labels/hippocampus_003.nii.gz'); b=nib.load('${c.labelPath}')
i=nib.load('${src}/images/hippocampus_003.nii.gz'); j=nib.load('${c.imagePaths[0]}')
print(np.array_equal(a.get_fdata(), b.get_fdata()), np.allclose(a.affine, b.affine, atol=1e-4), np.array_equal(i.get_fdata(), j.get_fdata()))`);
  assert.equal(r.trim(), 'True True True');
});

test('ISBI 2012: 0 (membrane) / 255 (cell) map to 0 / 1; the inverted mapping swaps them', async () => {
  const src = dataPath('isbi2012-em');
  const ds = readDataset(await importIsbi2012(src, join(tmp, 'isbi')));
  assert.equal(ds.training.length, 30);
  assert.deepEqual(ds.labels, { 0: 'membrane', 1: 'cell' });
  assert.equal(ds.fileEnding, '.png');
  const inv = readDataset(await importIsbi2012(src, join(tmp, 'isbi-inv'), { labelMapping: { 255: 0, 0: 1 }, limit: 10 }));
  assert.deepEqual(inv.labels, { 0: 'cell', 1: 'membrane' });
  const c = ds.training.find((x) => x.id === '1')!;
  const ci = inv.training.find((x) => x.id === '1')!;
  const r = py(`
import numpy as np; from PIL import Image
o=np.array(Image.open('${src}/masks/1.png')); a=np.array(Image.open('${c.labelPath}')); b=np.array(Image.open('${ci.labelPath}'))
print(np.array_equal(a, (o==255).astype(np.uint8)), np.array_equal(b, (o==0).astype(np.uint8)), np.array_equal(np.array(Image.open('${c.imagePaths[0]}')), np.array(Image.open('${src}/images/1.png'))))`);
  assert.equal(r.trim(), 'True True True');
});

test('DRIVE: RGB split into 3 channel files, vessels -> 1, FOV mask kept beside the label', async () => {
  const src = dataPath('drive');
  const ds = readDataset(await importDrive(src, join(tmp, 'drive'), { limit: 3 }));
  assert.equal(ds.training.length, 3);
  assert.equal(ds.test.length, 3);
  assert.deepEqual(ds.channels, ['R', 'G', 'B']);
  const c = ds.training.find((x) => x.id === 'drive_21')!;
  assert.equal(c.imagePaths.length, 3);
  assert.ok(c.regionMaskPath && c.labelPath);
  assert.ok(ds.test.every((t) => t.labelPath && t.regionMaskPath));
  const r = py(`
import numpy as np; from PIL import Image
rgb=np.array(Image.open('${src}/training/images/21_training.tif'))
ch=[np.array(Image.open(p)) for p in ${JSON.stringify(c.imagePaths)}]
lab=np.array(Image.open('${c.labelPath}')); m=np.array(Image.open('${c.regionMaskPath}'))
ol=np.array(Image.open('${src}/training/1st_manual/21_manual1.gif')); om=np.array(Image.open('${src}/training/mask/21_training_mask.gif'))
print(all(np.array_equal(ch[k], rgb[...,k]) for k in range(3)), np.array_equal(lab, (ol>0).astype(np.uint8)), np.array_equal(m, (om>0).astype(np.uint8)))`);
  assert.equal(r.trim(), 'True True True');
});

test('dataset.json: both label forms, MSD single-file cases, clear errors', () => {
  assert.deepEqual(parseLabels({ background: 0, liver: 1 }, 'x'), { 0: 'background', 1: 'liver' });
  assert.deepEqual(parseLabels({ 0: 'background', 1: 'liver' }, 'x'), { 0: 'background', 1: 'liver' });
  assert.throws(() => parseLabels({ background: 0, a: 2 }, 'x'), /consecutive/);
  assert.throws(() => parseLabels({ a: 1 }, 'x'), /background/);
  assert.throws(() => parseLabels({ bg: 0, r: [1, 2] }, 'x'), /region/);
  const d = join(tmp, 'msd');
  mkdirSync(join(d, 'imagesTr'), { recursive: true });
  mkdirSync(join(d, 'labelsTr'), { recursive: true });
  for (const id of ['la_003', 'la_004']) {
    writeFileSync(join(d, 'imagesTr', id + '.nii.gz'), '');
    writeFileSync(join(d, 'labelsTr', id + '.nii.gz'), '');
  }
  writeFileSync(
    join(d, 'dataset.json'),
    JSON.stringify({ name: 'Heart', modality: { 0: 'MRI' }, labels: { 0: 'background', 1: 'left atrium' }, numTraining: 2 }),
  );
  const ds = readDataset(d);
  assert.deepEqual(
    ds.training.map((c) => [c.id, c.imagePaths.length]),
    [
      ['la_003', 1],
      ['la_004', 1],
    ],
  );
  writeFileSync(join(d, 'dataset.json'), JSON.stringify({ modality: { 0: 'MRI' }, labels: { 0: 'background' }, numTraining: 3 }));
  assert.throws(() => readDataset(d), /numTraining = 3/);
  writeFileSync(join(d, 'dataset.json'), '{nope');
  assert.throws(
    () => readDataset(d),
    (e: unknown) => e instanceof MedsegIoError && e.code === 'CORRUPT',
  );
  writeFileSync(join(d, 'imagesTr', 'la_005_0000.nii.gz'), '');
  writeFileSync(join(d, 'dataset.json'), JSON.stringify({ channel_names: { 0: 'CT' }, labels: { background: 0 }, file_ending: '.nii.gz' }));
  assert.throws(() => readDataset(d), /mixes/);
});
