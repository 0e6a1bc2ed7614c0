/**
 * Non-IID site folders from real hippocampus cases: every case in exactly
 * one site, each site a dataset folder of symbolic links that reads like any
 * other; by intensity the sites' median foreground intensities do not
 * overlap (the medians against nibabel + NumPy); by case the split is seeded
 * and even; impossible splits are refused.
 */
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDataset } from '../data/dataset.ts';
import { importMsdHippocampus } from '../data/import.ts';
import { MedsegIoError } from '../io/errors.ts';
import { dataPath } from '../testing/data.ts';
import { runPythonJson } from '../testing/python.ts';
import { splitAcrossSites } from './site-split.ts';

test('site folders by intensity and by case: symlinked, disjoint, complete, ordered by median foreground intensity', { timeout: 60_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-split-'));
  try {
    const dataset = await importMsdHippocampus(dataPath('msd-hippocampus'), join(tmp, 'dataset'), { limit: 7 });
    const all = readDataset(dataset).training.map((c) => c.id);
    const sites = await splitAcrossSites({ dataset, out: join(tmp, 'by-intensity'), sites: 3, strategy: 'by-intensity' });
    assert.deepEqual(
      sites.map((s) => s.ids.length),
      [2, 2, 3],
    );
    assert.deepEqual(sites.flatMap((s) => s.ids).sort(), all);
    for (const s of sites) {
      const ds = readDataset(s.dir);
      assert.deepEqual(
        ds.training.map((c) => c.id),
        s.ids,
      );
      for (const sub of ['imagesTr', 'labelsTr'])
        for (const f of readdirSync(join(s.dir, sub))) {
          assert.ok(lstatSync(join(s.dir, sub, f)).isSymbolicLink(), `${sub}/${f} is a link`);
          assert.equal(readlinkSync(join(s.dir, sub, f)), join(dataset, sub, f));
        }
    }
    for (let k = 0; k + 1 < sites.length; k++)
      assert.ok(Math.max(...sites[k]!.medianIntensity!) <= Math.min(...sites[k + 1]!.medianIntensity!), `site ${k} is darker than site ${k + 1}`);
    const ref = runPythonJson<Record<string, number>>(
      [
        '-c',
        `import json, sys, numpy as np, nibabel as nib
d = json.load(sys.stdin)
print(json.dumps({i: float(np.median(nib.load(f"{d['dir']}/imagesTr/{i}_0000.nii.gz").get_fdata()[nib.load(f"{d['dir']}/labelsTr/{i}.nii.gz").get_fdata() > 0])) for i in d['ids']}))`,
      ],
      { dir: dataset, ids: all },
    );
    for (const s of sites)
      s.ids.forEach((id, i) => assert.ok(Math.abs(s.medianIntensity![i]! - ref[id]!) < 1e-3, `${id}: ${s.medianIntensity![i]} vs ${ref[id]}`));

    const byCase = await splitAcrossSites({ dataset, out: join(tmp, 'by-case'), sites: 4, strategy: 'by-case', seed: 1 });
    const again = await splitAcrossSites({ dataset, out: join(tmp, 'by-case-again'), sites: 4, strategy: 'by-case', seed: 1 });
    assert.deepEqual(
      byCase.map((s) => s.ids),
      again.map((s) => s.ids),
      'seeded',
    );
    assert.deepEqual(byCase.flatMap((s) => s.ids).sort(), all);
    assert.ok(byCase.every((s) => s.ids.length >= 1 && s.ids.length <= 2));
    assert.notDeepEqual(
      byCase.flatMap((s) => s.ids),
      all,
      'shuffled',
    );

    await assert.rejects(splitAcrossSites({ dataset, out: join(tmp, 'x'), sites: 8, strategy: 'by-case' }), MedsegIoError);
    await assert.rejects(splitAcrossSites({ dataset, out: join(tmp, 'by-case'), sites: 4, strategy: 'by-case' }), /already exists/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
