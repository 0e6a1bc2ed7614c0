/**
 * `medseg convert` against Debian's dcm2niix on the shared CT series and on
 * oblique MR series our writer makes from a shared volume, uncompressed and
 * compressed (JPEG lossless, JPEG 2000): after both NIfTIs are brought to the
 * closest canonical (RAS) orientation by nibabel, the affines agree within
 * 1e-4 mm and the voxels are equal.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { compressSeries, rotation, run, skipUnless, writeSeries } from '../../testing/dicom-compressed.ts';
import { runMedseg } from '../../testing/cli.ts';
import { runPythonJson } from '../../testing/python.ts';
import { readNifti } from '../../io/nifti.ts';
import { readNrrd } from '../../io/nrrd.ts';
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE } from '../errors.ts';
import { runCli } from '../program.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-convert-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const CT = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');

/** dcm2niix on a folder: the one NIfTI it writes. */
function dcm2niix(dir: string, name: string): string {
  const out = join(tmp, `${name}-dcm2niix`);
  mkdirSync(out, { recursive: true });
  run('dcm2niix', ['-z', 'y', '-b', 'n', '-f', name, '-o', out, dir]);
  const nii = readdirSync(out).filter((f) => f.endsWith('.nii.gz'));
  assert.equal(nii.length, 1, `dcm2niix wrote ${nii.join(', ')}`);
  return join(out, nii[0]!);
}

const COMPARE = `
import sys, json, numpy as np, nibabel as nib
a, b = (nib.as_closest_canonical(nib.load(p)) for p in sys.argv[1:3])
fa, fb = a.get_fdata(), b.get_fdata()
print(json.dumps({'shape': [list(a.shape), list(b.shape)], 'affine': float(np.abs(a.affine - b.affine).max()),
  'voxels': float(np.abs(fa - fb).max()) if fa.shape == fb.shape else None}))
`;

async function convertAndCompare(dir: string, name: string): Promise<void> {
  const ours = join(tmp, `${name}.nii.gz`);
  const code = await runCli(['node', 'medseg', 'convert', dir, ours]);
  assert.equal(code, EXIT_OK);
  const ref = dcm2niix(dir, name);
  const r = runPythonJson<{ shape: number[][]; affine: number; voxels: number | null }>(['-c', COMPARE, ours, ref]);
  console.log(`${name}: canonical affines differ by ${r.affine} mm, voxels by ${r.voxels}`);
  assert.deepEqual(r.shape[0], r.shape[1], 'shape');
  assert.ok(r.affine <= 1e-4, `affine differs by ${r.affine} mm`);
  assert.equal(r.voxels, 0, `voxels differ by up to ${r.voxels}`);
}

describe('medseg convert vs dcm2niix', { skip: skipUnless(['dcm2niix']) }, () => {
  const mr = (async () => {
    const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_003.nii.gz'));
    const dir = join(tmp, 'mr');
    writeSeries(v, dir, { bitsAllocated: 16, bitsStored: 12, rotation: rotation(20, 10), seriesUID: '2.25.2001', zRange: [10, 20] });
    return dir;
  })();

  it('the shared CT series (float32 HU; dcm2niix int16 with scaling)', async () => {
    await convertAndCompare(CT, 'ct');
  });

  it('an oblique MR series, uncompressed', async () => {
    await convertAndCompare(await mr, 'mr');
  });

  it('the same MR series as JPEG lossless (.70) and JPEG 2000 (.90)', { skip: skipUnless(['dcmcjpeg', 'gdcmconv']) }, async () => {
    const src = await mr;
    for (const c of ['jpeg-lossless-sv1', 'j2k'] as const) {
      const dir = join(tmp, `mr-${c}`);
      compressSeries(c, src, dir);
      await convertAndCompare(dir, `mr-${c}`);
    }
  });

  it('writes NRRD with the same grid and voxels as the NIfTI', async () => {
    const nrrd = join(tmp, 'ct.nrrd');
    assert.equal(await runCli(['node', 'medseg', 'convert', CT, nrrd, '--json']), EXIT_OK);
    const a = await readNrrd(nrrd);
    const b = await readNifti(join(tmp, 'ct.nii.gz'));
    assert.deepEqual(a.size, b.size);
    for (const k of ['origin', 'spacing', 'direction'] as const) a[k].forEach((x, i) => assert.ok(Math.abs(x - b[k][i]!) < 1e-5, `${k}[${i}]`));
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
  });
});

describe('medseg convert errors', () => {
  it('exit 64 for an output format it cannot write, 2 for a folder without DICOM, naming it', () => {
    const usage = runMedseg(['convert', CT, join(tmp, 'out.png')]);
    assert.equal(usage.status, EXIT_USAGE, usage.stderr);
    assert.match(usage.stderr, /\.nii\.gz, \.nii or \.nrrd/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const bad = runMedseg(['convert', empty, join(tmp, 'out.nii.gz')]);
    assert.equal(bad.status, EXIT_BAD_INPUT, bad.stderr);
    assert.match(bad.stderr, /no readable DICOM files/);
  });
});
