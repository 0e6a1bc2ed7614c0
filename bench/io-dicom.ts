/**
 * DICOM read speed, medseg vs pydicom (+ numpy to build the same result) in
 * the same run:
 * - the 3-slice 512² CT series (implicit VR LE, rescale to float32 HU):
 *   readDicomSeries vs dcmread + sort by position on the normal + stack + rescale;
 * - the two CT SEGs (liver: 3 frames, partial_overlaps: 5 segments / 7 frames)
 *   placed as per-segment masks on the CT grid: readDicomSeg({source}) vs
 *   dcmread + pixel_array (bit unpacking) + placement by ReferencedSOPInstanceUID.
 * Each side: one warm-up round, then the median of ROUNDS rounds of REPEAT
 * reads; Python is timed inside the interpreter (start-up and imports excluded).
 * ratio = medseg_s / python_s (below 1: medseg is faster).
 *
 * Alone: node --import tsx -e "import('./bench/io-dicom.ts').then(m=>m.run()).then(r=>console.log(r))"
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readDicomSeg } from '../packages/medseg/src/io/dicom/seg-read.ts';
import { readDicomSeries } from '../packages/medseg/src/io/dicom/series.ts';
import { dataPath } from '../packages/medseg/src/testing/data.ts';
import { PY_TIMED, secondsPerCall } from './lib/stats.ts';

const ROUNDS = 5;
const REPEAT = 5;

const timeMedseg = (read: () => Promise<unknown>) => secondsPerCall(read, ROUNDS, REPEAT);

const PY = `
import json, sys, time
import numpy as np, pydicom
cfg = json.loads(sys.stdin.read())

def read_series(files):
    ds = [pydicom.dcmread(f) for f in files]
    iop = np.array([float(x) for x in ds[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ds.sort(key=lambda d: float(np.dot(normal, [float(x) for x in d.ImagePositionPatient])))
    vol = np.empty((len(ds), int(ds[0].Rows), int(ds[0].Columns)), np.float32)
    for z, d in enumerate(ds):
        vol[z] = d.pixel_array * np.float32(d.RescaleSlope) + np.float32(d.RescaleIntercept)
    return vol, [str(d.SOPInstanceUID) for d in ds]

def read_seg(path, sops, shape):
    d = pydicom.dcmread(path)
    frames = d.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    index = {u: z for z, u in enumerate(sops)}
    masks = {int(s.SegmentNumber): np.zeros(shape, np.uint8) for s in d.SegmentSequence}
    for k, f in enumerate(d.PerFrameFunctionalGroupsSequence):
        z = index[f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        seg = int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        masks[seg][z] |= frames[k]
    return masks

${PY_TIMED}

vol, sops = read_series(cfg['series'])
res = {'series': timed(lambda: read_series(cfg['series']), cfg['rounds'], cfg['repeat'])}
for name, path in cfg['segs'].items():
    res[name] = timed(lambda: read_seg(path, sops, vol.shape), cfg['rounds'], cfg['repeat'])
print(json.dumps(res))
`;

export async function run(): Promise<Record<string, { medseg_s: number; python_s: number; ratio: number }>> {
  const dir = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
  const files = readdirSync(dir)
    .sort()
    .map((f) => `${dir}/${f}`);
  const segs = { liver: dataPath('dcmqi-ct-dicomseg', 'liver.dcm'), partial_overlaps: dataPath('dcmqi-ct-dicomseg', 'partial_overlaps.dcm') };
  const py = JSON.parse(
    execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify({ series: files, segs, rounds: ROUNDS, repeat: REPEAT }) }).toString(),
  ) as Record<string, number>;
  const result: Record<string, { medseg_s: number; python_s: number; ratio: number }> = {};
  const add = (name: string, medseg: number, python: number) =>
    (result[name] = { medseg_s: +medseg.toFixed(5), python_s: +python.toFixed(5), ratio: +(medseg / python).toFixed(3) });
  add('dicom_series_read_ct_3x512x512_vs_pydicom', await timeMedseg(() => readDicomSeries(files)), py.series!);
  const ct = await readDicomSeries(files);
  add('dicom_seg_read_liver_masks_vs_pydicom', await timeMedseg(() => readDicomSeg(segs.liver, { source: ct })), py.liver!);
  add('dicom_seg_read_partial_overlaps_masks_vs_pydicom', await timeMedseg(() => readDicomSeg(segs.partial_overlaps, { source: ct })), py.partial_overlaps!);
  return result;
}
