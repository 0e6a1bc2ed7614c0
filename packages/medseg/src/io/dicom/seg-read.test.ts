import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { MedsegIoError } from '../errors.ts';
import { runRef } from '../../testing/dicom-ref.ts';
import { readDicomSeries } from './series.ts';
import { readDicomSeg, segGrid, segLabelmap } from './seg-read.ts';

const D = (...p: string[]) => dataPath('dcmqi-ct-dicomseg', ...p);
const NRRDS = [
  'liver_seg.nrrd',
  'partial_overlaps-1.nrrd',
  'partial_overlaps-2.nrrd',
  'partial_overlaps-3.nrrd',
  'sparse_labelmap_ppv5_seg.nrrd',
  'sparse_labelmap_noppv_seg.nrrd',
  '23x38x3/nrrd/label.nrrd',
  '24x38x3/nrrd/label.nrrd',
];
// Reference label maps read by an independent numpy NRRD parser (dicom_ref.py), not by our nrrd.ts.
const ref = Object.fromEntries(runRef(NRRDS.map((f) => ({ op: 'nrrd', file: D(f) }))).map((r, i) => [NRRDS[i]!, r.data!]));

function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
const eq = (r: Float32Array, label: number) => Uint8Array.from(r, (v) => (v === label ? 1 : 0));

describe('readDicomSeg vs dcmqi NRRD label maps', async () => {
  const ct = await readDicomSeries(D('ct-3slice'));
  const img23 = await readDicomSeries(D('23x38x3/image'));
  const img24 = await readDicomSeries(D('24x38x3/image'));

  it('liver.dcm on the CT grid matches liver_seg.nrrd voxel for voxel', async () => {
    const seg = await readDicomSeg(D('liver.dcm'), { source: ct });
    assert.equal(seg.segmentationType, 'BINARY');
    assert.deepEqual(
      seg.segments.map((s) => s.label),
      ['Liver'],
    );
    const mask = seg.masks!.get(1)!;
    assert.deepEqual(mask.size, ct.size);
    const r = ref['liver_seg.nrrd']!;
    assert.ok(
      r.some((v) => v === 1),
      'reference not empty',
    );
    assert.equal(countDiff(mask.data, eq(r, 1)), 0);
    assert.equal(countDiff(segLabelmap(seg, ct).labelmap.data, r), 0);
    // Slicer's liver colour (221,130,101) is what the stored CIELab means.
    const rgb = seg.segments[0]!.rgb!;
    [221, 130, 101].forEach((c, i) => assert.ok(Math.abs(rgb[i]! - c) <= 2, `rgb ${rgb}`));
    assert.match(seg.segments[0]!.category?.scheme ?? '', /^(SRT|SCT)$/);
  });

  it('liver.dcm without the source builds the same grid from its plane positions', async () => {
    const seg = await readDicomSeg(D('liver.dcm'));
    const g = segGrid(seg);
    assert.deepEqual(g.size, ct.size);
    g.origin.forEach((x, i) => assert.ok(Math.abs(x - ct.origin[i]!) < 1e-4));
    g.spacing.forEach((x, i) => assert.ok(Math.abs(x - ct.spacing[i]!) < 1e-4));
    assert.equal(countDiff(segLabelmap(seg, g).labelmap.data, ref['liver_seg.nrrd']!), 0);
  });

  it('partial_overlaps.dcm: each segment matches its NRRD, overlaps are refused by the label map', async () => {
    const seg = await readDicomSeg(D('partial_overlaps.dcm'), { source: ct });
    assert.equal(seg.segments.length, 5);
    const seen = new Set<number>();
    for (const f of ['partial_overlaps-1.nrrd', 'partial_overlaps-2.nrrd', 'partial_overlaps-3.nrrd']) {
      const r = ref[f]!;
      for (const label of new Set(r)) {
        if (!label) continue;
        seen.add(label);
        assert.equal(countDiff(seg.masks!.get(label)!.data, eq(r, label)), 0, `${f} label ${label}`);
      }
    }
    assert.deepEqual([...seen].sort(), [1, 2, 3, 4, 5]);
    // Independent overlap count: voxels set in more than one NRRD.
    const r1 = ref['partial_overlaps-1.nrrd']!,
      r2 = ref['partial_overlaps-2.nrrd']!,
      r3 = ref['partial_overlaps-3.nrrd']!;
    let overlap = 0;
    for (let i = 0; i < r1.length; i++) if ((r1[i] ? 1 : 0) + (r2[i] ? 1 : 0) + (r3[i] ? 1 : 0) > 1) overlap++;
    assert.ok(overlap > 0);
    assert.throws(
      () => segLabelmap(seg, ct),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_DATA' && /overlap/.test(e.message),
    );
    const lm = segLabelmap(seg, ct, { onOverlap: 'last' });
    assert.ok(lm.overlapVoxels >= overlap, `${lm.overlapVoxels} >= ${overlap}`);
  });

  it('sparse LABELMAP SEGs match their NRRDs (uncovered slice = PixelPaddingValue)', async () => {
    for (const [dcm, nrrd] of [
      ['sparse-labelmap-ppv5.dcm', 'sparse_labelmap_ppv5_seg.nrrd'],
      ['sparse-labelmap-noppv.dcm', 'sparse_labelmap_noppv_seg.nrrd'],
    ]) {
      const seg = await readDicomSeg(D(dcm!), { source: img24 });
      assert.equal(seg.segmentationType, 'LABELMAP');
      assert.equal(countDiff(segLabelmap(seg, img24).labelmap.data, ref[nrrd!]!), 0, dcm);
      assert.equal(countDiff(seg.masks!.get(1)!.data, eq(ref[nrrd!]!, 1)), 0, dcm);
    }
  });

  it('odd-sized BINARY SEGs (frames not byte aligned) match label.nrrd', async () => {
    for (const [dir, img] of [
      ['23x38x3', img23],
      ['24x38x3', img24],
    ] as const) {
      const seg = await readDicomSeg(D(dir, 'seg/label.seg'), { source: img });
      const r = ref[`${dir}/nrrd/label.nrrd`]!;
      assert.ok(r.some((v) => v !== 0));
      assert.equal(countDiff(segLabelmap(seg, img).labelmap.data, r), 0, dir);
    }
  });

  it('refuses a grid of another size', async () => {
    await assert.rejects(readDicomSeg(D('liver.dcm'), { source: img23 }), (e: unknown) => e instanceof MedsegIoError && e.code === 'BAD_GEOMETRY');
  });
});
