/**
 * De-identification of a whole series, folder in -> folder out, medseg's
 * deidentifyTree (PS3.15 Basic Profile, every Table E.1-1 row, change log)
 * vs two peers in the same run:
 * - gdcm's gdcmanon -e (Basic Profile, de-identify mode with a throw-away
 *   certificate, so it also encrypts the original attributes into the
 *   Encrypted Attributes Sequence, as its mode requires), one process over
 *   the folder (its start-up is part of its time);
 * - a pydicom loop applying the same Table E.1-1 rows medseg uses (X removes,
 *   Z empties, D dummies, U remaps through one map per run, K / C keep; the
 *   compound actions take their first letter; private tags removed),
 *   recursing into sequences, dcmread + save_as per file, timed inside the
 *   interpreter.
 * Series: the shared 3-slice CT (real scanner headers) and an MR series of
 * every slice of a shared hippocampus volume written by medseg's writer.
 * ratio = medseg_s / python_s (pydicom loop); gdcmanon_s is reported beside it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROFILE_ROWS } from '../packages/medseg/src/io/dicom/deid-profile.ts';
import { deidentifyTree } from '../packages/medseg/src/io/dicom/deidentify-tree.ts';
import { readNifti } from '../packages/medseg/src/io/nifti.ts';
import { dataPath } from '../packages/medseg/src/testing/data.ts';
import { missingTools, writeSeries } from '../packages/medseg/src/testing/dicom-compressed.ts';
import { median } from './lib/stats.ts';

const ROUNDS = 5;

export type DeidRow = { medseg_s: number; python_s: number; ratio: number; gdcmanon_s: number; files: number; peer: string };

const PY = `
import json, os, sys, time, uuid
import pydicom
from pydicom.tag import Tag
cfg = json.loads(sys.stdin.read())
rows = {int(t, 16): a.split('/')[0] for t, a in cfg['rows'].items()}
DUMMY = {'DA': '19000101', 'TM': '000000', 'DT': '19000101000000', 'AS': '000Y', 'DS': '0', 'IS': '0', 'UI': '2.25.0'}

def deid(ds, uids):
    ds.remove_private_tags()
    for elem in list(ds):
        a = rows.get(int(elem.tag))
        if elem.VR == 'SQ':
            if a == 'X':
                del ds[elem.tag]
                continue
            if a == 'Z':
                elem.value = []
                continue
            for item in elem.value:
                deid(item, uids)
            continue
        if a == 'X':
            del ds[elem.tag]
        elif a == 'Z':
            elem.value = ''
        elif a == 'D':
            elem.value = DUMMY.get(elem.VR, 'ANONYMIZED')
        elif a == 'U':
            v = str(elem.value)
            uids.setdefault(v, '2.25.%d' % uuid.uuid4().int)
            elem.value = uids[v]

def run(files, out):
    uids = {}
    for f in files:
        ds = pydicom.dcmread(f)
        deid(ds, uids)
        ds.save_as(os.path.join(out, os.path.basename(f)))

res = {}
for name, s in cfg['series'].items():
    times = []
    for r in range(cfg['rounds'] + 1):
        t0 = time.perf_counter()
        run(s['files'], s['out'])
        if r > 0:
            times.append(time.perf_counter() - t0)
    res[name] = sorted(times)[len(times) // 2]
print(json.dumps(res))
`;

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f));
}

export async function run(): Promise<Record<string, DeidRow>> {
  const missing = missingTools(['gdcmanon', 'openssl']);
  if (missing.length) throw new Error(`the de-identification rows need ${missing.join(', ')} (bash scripts/setup.sh test)`);
  const tmp = mkdtempSync(join(tmpdir(), 'medseg-bench-deid-'));
  try {
    const mr = join(tmp, 'mr');
    const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_001.nii.gz'));
    writeSeries(v, mr, { bitsAllocated: 16, bitsStored: 12, seriesUID: '2.25.7302' });
    const series: Record<string, string> = { ct_3slice: dataPath('dcmqi-ct-dicomseg', 'ct-3slice'), [`mr_${v.size[2]}slice`]: mr };
    const cert = join(tmp, 'cert.pem');
    const key = join(tmp, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=medseg-bench', '-days', '1'], {
      stdio: 'ignore',
    });
    const rows = Object.fromEntries(PROFILE_ROWS.filter((r) => !r.tag.includes('x')).map((r) => [r.tag, r.basic]));
    const pyIn = Object.fromEntries(Object.entries(series).map(([name, dir]) => [name, { files: files(dir), out: join(tmp, `py-${name}`) }]));
    for (const { out } of Object.values(pyIn)) execFileSync('mkdir', ['-p', out]);
    const py = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify({ rows, series: pyIn, rounds: ROUNDS }) }).toString()) as Record<
      string,
      number
    >;
    const result: Record<string, DeidRow> = {};
    for (const [name, dir] of Object.entries(series)) {
      const ours: number[] = [];
      const gdcm: number[] = [];
      for (let r = 0; r <= ROUNDS; r++) {
        const out = join(tmp, `medseg-${name}-${r}`);
        const t0 = performance.now();
        const res = await deidentifyTree(dir, out);
        if (res.written !== files(dir).length) throw new Error(`medseg de-identified ${res.written} of ${files(dir).length} files of ${name}`);
        if (r > 0) ours.push((performance.now() - t0) / 1000);
        const gOut = join(tmp, `gdcm-${name}-${r}`);
        const t1 = performance.now();
        const g = spawnSync('gdcmanon', ['--certificate', cert, '-e', '-i', dir, '-o', gOut], { encoding: 'utf8' });
        if (g.status !== 0) throw new Error(`gdcmanon on ${name}: ${g.stderr}`);
        if (r > 0) gdcm.push((performance.now() - t1) / 1000);
        rmSync(out, { recursive: true, force: true });
        rmSync(gOut, { recursive: true, force: true });
      }
      const m = median(ours);
      result[`dicom_deidentify_series_${name}`] = {
        medseg_s: +m.toFixed(5),
        python_s: +py[name]!.toFixed(5),
        ratio: +(m / py[name]!).toFixed(3),
        gdcmanon_s: +median(gdcm).toFixed(5),
        files: files(dir).length,
        peer: 'pydicom loop over the same Table E.1-1 rows (python_s); gdcmanon -e over the folder, one process (gdcmanon_s)',
      };
    }
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
