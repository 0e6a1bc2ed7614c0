/**
 * De-identification of real files: the shared CT series (with its private
 * tags) and an MR series medseg writes from a shared volume, compared with a
 * second implementation of the Basic Profile (gdcm's gdcmanon, de-identify
 * mode with a throw-away certificate; dcmjs's anonymizer), read back by pydicom and by medseg's
 * series reader; UID consistency into a SEG and an RTSTRUCT that reference
 * the series (de-identified through their writers);
 * burned-in annotation; hostile input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPath } from '../../testing/data.ts';
import { skipUnless, writeSeries } from '../../testing/dicom-compressed.ts';
import { runPython } from '../../testing/python.ts';
import { MedsegIoError } from '../errors.ts';
import { readNifti } from '../nifti.ts';
import { BurnedInAnnotationError, deidentify, deidentifyFile, newDeidentifyState, type DeidentifyState } from './deidentify.ts';
import { deidentifyTree } from './deidentify-tree.ts';
import { T } from './dictionary.ts';
import { parseDicom } from './parse.ts';
import { parseRtStruct, rtstructLabelmap } from './rtstruct-read.ts';
import { writeRtStruct } from './rtstruct-write.ts';
import { parseDicomSeg, segLabelmap } from './seg-read.ts';
import { writeDicomSeg } from './seg-write.ts';
import { readDicomSeries } from './series.ts';
import { el, writeDicom } from './write.ts';

const CT = dataPath('dcmqi-ct-dicomseg', 'ct-3slice');
const tmp = mkdtempSync(join(tmpdir(), 'medseg-deid-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const MR = join(tmp, 'mr');
const mrReady = (async () => {
  const v = await readNifti(dataPath('msd-hippocampus', 'images', 'hippocampus_003.nii.gz'));
  writeSeries(v, MR, { bitsAllocated: 16, bitsStored: 12, seriesUID: '2.25.3001', zRange: [10, 14] });
})();

function deidentifyFolder(src: string, dst: string, opts: Parameters<typeof deidentify>[1] = {}): void {
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src).sort()) writeFileSync(join(dst, f), deidentify(readFileSync(join(src, f)), opts));
}

// pydicom reads the original and the de-identified files and reports what changed.
const CHECK = `
import sys, json, numpy as np, pydicom
out = []
for orig, new in zip(sys.argv[1::2], sys.argv[2::2]):
    a = pydicom.dcmread(orig); b = pydicom.dcmread(new)
    out.append({
        'privateBefore': sum(1 for e in a.iterall() if e.tag.is_private),
        'privateAfter': sum(1 for e in b.iterall() if e.tag.is_private),
        'name': str(b.PatientName), 'id': str(b.PatientID), 'birth': str(b.get('PatientBirthDate', 'absent')),
        'studyDate': str(b.get('StudyDate', 'absent')), 'origStudyDate': str(a.StudyDate),
        'removed': str(b.PatientIdentityRemoved), 'method': list(b.DeidentificationMethod) if b['DeidentificationMethod'].VM > 1 else [str(b.DeidentificationMethod)],
        'codes': [str(it.CodeValue) for it in b.DeidentificationMethodCodeSequence],
        'study': str(b.StudyInstanceUID), 'origStudy': str(a.StudyInstanceUID),
        'series': str(b.SeriesInstanceUID), 'sop': str(b.SOPInstanceUID), 'origSop': str(a.SOPInstanceUID),
        'mediaSop': str(b.file_meta.MediaStorageSOPInstanceUID), 'sopClass': str(b.SOPClassUID), 'origSopClass': str(a.SOPClassUID),
        'for': str(b.FrameOfReferenceUID), 'origFor': str(a.FrameOfReferenceUID),
        'pixelsEqual': bool(np.array_equal(a.pixel_array, b.pixel_array)),
    })
print(json.dumps(out))
`;

function pydicomCheck(src: string, dst: string) {
  const args = readdirSync(src)
    .sort()
    .flatMap((f) => [join(src, f), join(dst, f)]);
  return JSON.parse(runPython(['-c', CHECK, ...args])) as Record<string, string | number | boolean | string[]>[];
}

describe('deidentify on the shared CT series, checked with pydicom', () => {
  it('removes identity and private tags, replaces UIDs consistently, keeps pixels', () => {
    const dst = join(tmp, 'basic');
    deidentifyFolder(CT, dst, { state: newDeidentifyState() });
    const r = pydicomCheck(CT, dst);
    const sops = new Set<string>();
    for (const x of r) {
      assert.ok((x.privateBefore as number) > 0, 'the source has private tags to remove');
      assert.equal(x.privateAfter, 0);
      assert.equal(x.name, 'ANONYMOUS');
      assert.equal(x.id, 'ANON-1');
      assert.equal(x.birth, '');
      assert.equal(x.studyDate, '');
      assert.equal(x.removed, 'YES');
      assert.deepEqual(x.codes, ['113100']);
      assert.match(String((x.method as string[])[0]), /Basic Application Level Confidentiality/);
      assert.notEqual(x.study, x.origStudy);
      assert.notEqual(x.sop, x.origSop);
      assert.equal(x.mediaSop, x.sop);
      assert.equal(x.sopClass, x.origSopClass, 'class UIDs are not instance UIDs');
      assert.notEqual(x.for, x.origFor);
      assert.ok(x.pixelsEqual);
      sops.add(String(x.sop));
    }
    assert.equal(sops.size, 3, 'distinct SOP instances stay distinct');
    assert.equal(new Set(r.map((x) => x.study)).size, 1, 'one study in, one study out');
    assert.equal(new Set(r.map((x) => x.series)).size, 1);
    assert.equal(new Set(r.map((x) => x.for)).size, 1);
  });

  it('shifts dates with the Modified Dates option, keeps them with Full Dates, and says so in the code sequence', () => {
    const shiftedDst = join(tmp, 'shift');
    deidentifyFolder(CT, shiftedDst, { dates: 'shift', shiftDays: -30, patientId: 'P7' });
    for (const x of pydicomCheck(CT, shiftedDst)) {
      const o = String(x.origStudyDate);
      const expected = new Date(Date.UTC(+o.slice(0, 4), +o.slice(4, 6) - 1, +o.slice(6, 8) - 30)).toISOString().slice(0, 10).replace(/-/g, '');
      assert.equal(x.studyDate, expected);
      assert.equal(x.id, 'P7');
      assert.deepEqual(x.codes, ['113100', '113107']);
    }
    const keptDst = join(tmp, 'keep');
    deidentifyFolder(CT, keptDst, { dates: 'keep' });
    for (const x of pydicomCheck(CT, keptDst)) {
      assert.equal(x.studyDate, x.origStudyDate);
      assert.deepEqual(x.codes, ['113100', '113106']);
    }
  });

  it("reads back through medseg's series reader to the same voxels and geometry (CT and an MR series written from a shared volume)", async () => {
    await mrReady;
    for (const [src, name] of [
      [CT, 'ct'],
      [MR, 'mr'],
    ] as const) {
      const dst = join(tmp, `reader-${name}`);
      deidentifyFolder(src, dst, { state: newDeidentifyState() });
      const a = await readDicomSeries(src);
      const b = await readDicomSeries(dst);
      assert.deepEqual(b.size, a.size);
      assert.deepEqual(b.spacing, a.spacing);
      assert.deepEqual(b.origin, a.origin);
      assert.deepEqual(b.direction, a.direction);
      assert.deepEqual(b.data, a.data, `${name}: same voxels`);
      assert.notEqual(b.meta.seriesInstanceUID, a.meta.seriesInstanceUID);
    }
  });
});

// Every top-level attribute of the original, and what each de-identified copy made of it.
const COMPARE = `
import sys, json, pydicom
def state(ds, e):
    if e.tag not in ds: return 'absent'
    f = ds[e.tag]
    if f.VR == 'SQ':
        if len(f.value) == 0: return 'empty'
        return 'same' if f.value == e.value else 'changed'
    if f.VM == 0 or f.value in ('', b'', None): return 'empty'
    return 'same' if f.value == e.value else 'changed'
rows = []
for orig, gdcm, ours in zip(sys.argv[1::3], sys.argv[2::3], sys.argv[3::3]):
    a = pydicom.dcmread(orig); g = pydicom.dcmread(gdcm); o = pydicom.dcmread(ours)
    for e in a:
        if e.tag.is_private or e.tag.group == 2: continue
        rows.append({'file': orig.rsplit('/', 1)[-1], 'tag': '%08x' % int(e.tag), 'keyword': e.keyword, 'gdcm': state(g, e), 'ours': state(o, e)})
print(json.dumps(rows))
`;

describe('deidentify against gdcm (gdcmanon, PS3.15 Basic Profile) on real files', { skip: skipUnless(['gdcmanon', 'openssl']) }, () => {
  it('every attribute gdcm removes or empties is removed or emptied by medseg too', async () => {
    await mrReady;
    const cert = join(tmp, 'cert.pem');
    const key = join(tmp, 'key.pem');
    const ssl = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=medseg-test', '-days', '1'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(ssl.status, 0, ssl.stderr);
    const triples: string[] = [];
    let compared = 0;
    for (const [src, name] of [
      [CT, 'ct'],
      [MR, 'mr'],
    ] as const) {
      const gdcmDir = join(tmp, `gdcm-${name}`);
      const oursDir = join(tmp, `ours-${name}`);
      mkdirSync(gdcmDir, { recursive: true });
      deidentifyFolder(src, oursDir, { state: newDeidentifyState() });
      for (const f of readdirSync(src).sort()) {
        const g = spawnSync('gdcmanon', ['--certificate', cert, '-e', join(src, f), join(gdcmDir, f)], { encoding: 'utf8' });
        assert.equal(g.status, 0, `gdcmanon ${f}: ${g.stderr}`);
        triples.push(join(src, f), join(gdcmDir, f), join(oursDir, f));
        compared++;
      }
    }
    const rows = JSON.parse(runPython(['-c', COMPARE, ...triples])) as { file: string; tag: string; keyword: string; gdcm: string; ours: string }[];
    assert.ok(compared >= 7 && rows.length > 100, `${compared} files, ${rows.length} attributes compared`);
    const gone = new Set(['absent', 'empty']);
    // Patient's Name and Patient ID are Z in the table, which allows a dummy: medseg writes a pseudonym.
    const pseudonyms = new Set(['PatientName', 'PatientID']);
    const missed = rows.filter((r) => gone.has(r.gdcm) && !gone.has(r.ours) && !(pseudonyms.has(r.keyword) && r.ours === 'changed'));
    assert.deepEqual(
      missed.map((r) => `${r.file} ${r.keyword} (${r.tag}): gdcm ${r.gdcm}, medseg ${r.ours}`),
      [],
      'attributes gdcm removes or empties and medseg keeps',
    );
    const both = rows.filter((r) => gone.has(r.gdcm) && gone.has(r.ours));
    const oursOnly = rows.filter((r) => !gone.has(r.gdcm) && gone.has(r.ours));
    console.log(
      `${rows.length} attributes in ${compared} files: removed or emptied by both ${both.length}, by medseg only ${oursOnly.length} (${[...new Set(oursOnly.map((r) => r.keyword))].join(', ')})`,
    );
    for (const k of ['PatientBirthDate', 'ReferringPhysicianName', 'AccessionNumber', 'StudyID']) {
      assert.ok(
        both.some((r) => r.keyword === k),
        `both remove or empty ${k}`,
      );
    }
  });
});

interface DcmjsApi {
  data: { DicomMessage: { readFile(b: ArrayBuffer): { dict: Record<string, { vr: string; Value?: unknown[] }> } } };
  anonymizer: { cleanTags(dict: Record<string, { vr: string; Value?: unknown[] }>): void };
}

describe('deidentify against dcmjs (anonymizer.cleanTags) on real files', () => {
  it('every attribute dcmjs empties is removed or emptied by medseg too', async () => {
    await mrReady;
    const dcmjs = (await import('dcmjs')).default as DcmjsApi;
    let emptied = 0;
    const missed: string[] = [];
    for (const src of [CT, MR]) {
      for (const f of readdirSync(src).sort()) {
        const bytes = readFileSync(join(src, f));
        const dict = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).dict;
        const before = new Map(Object.entries(dict).map(([k, v]) => [k, JSON.stringify(v.Value ?? [])]));
        dcmjs.anonymizer.cleanTags(dict);
        const ours = parseDicom(deidentify(bytes, { state: newDeidentifyState() })).dataset;
        for (const [k, v] of Object.entries(dict)) {
          const was = before.get(k)!;
          const now = JSON.stringify(v.Value ?? []);
          if (was === now || now !== '[]' || was === '[]') continue; // only what dcmjs emptied
          emptied++;
          const tag = parseInt(k, 16) >>> 0;
          const e = ours.get(tag);
          // its Patient's Name / Patient ID replacements are pseudonyms in both
          if (e && (e.items ? e.items.length : e.bytes.length) > 0 && tag !== 0x00100010 && tag !== 0x00100020) missed.push(`${f} ${k}`);
        }
      }
    }
    assert.ok(emptied >= 20, `${emptied} attributes emptied by dcmjs`);
    assert.deepEqual(missed, [], 'attributes dcmjs empties and medseg keeps');
  });
});

/** The UIDs a de-identified CT series and a SEG that references it carry, read by pydicom. */
const REFS = `
import sys, json, pydicom
ct = [pydicom.dcmread(p) for p in sys.argv[2:]]
seg = pydicom.dcmread(sys.argv[1])
refs = []
for fr in seg.PerFrameFunctionalGroupsSequence:
    for d in fr.get('DerivationImageSequence', []):
        for s in d.SourceImageSequence: refs.append(str(s.ReferencedSOPInstanceUID))
series_refs = [(str(s.SeriesInstanceUID), [str(i.ReferencedSOPInstanceUID) for i in s.ReferencedInstanceSequence]) for s in seg.ReferencedSeriesSequence]
print(json.dumps({
  'ctSops': sorted(str(d.SOPInstanceUID) for d in ct), 'ctSeries': sorted(set(str(d.SeriesInstanceUID) for d in ct)),
  'ctStudy': sorted(set(str(d.StudyInstanceUID) for d in ct)), 'ctFor': sorted(set(str(d.FrameOfReferenceUID) for d in ct)),
  'segStudy': str(seg.StudyInstanceUID), 'segFor': str(seg.FrameOfReferenceUID), 'frameRefs': refs, 'seriesRefs': series_refs,
  'segSop': str(seg.SOPInstanceUID), 'segName': str(seg.PatientName), 'segId': str(seg.PatientID),
}))
`;

describe('UID consistency across a series and into a SEG that references it', () => {
  async function check(segBytes: Uint8Array, state: DeidentifyState, label: string) {
    const ctDst = join(tmp, `seg-ct-${label}`);
    mkdirSync(ctDst, { recursive: true });
    for (const f of readdirSync(CT).sort()) writeFileSync(join(ctDst, f), deidentifyFile(readFileSync(join(CT, f)), { state }).bytes);
    const segPath = join(tmp, `seg-${label}.dcm`);
    writeFileSync(segPath, segBytes);
    const r = JSON.parse(runPython(['-c', REFS, segPath, ...readdirSync(ctDst).map((f) => join(ctDst, f))])) as {
      ctSops: string[];
      ctSeries: string[];
      ctStudy: string[];
      ctFor: string[];
      segStudy: string;
      segFor: string;
      frameRefs: string[];
      seriesRefs: [string, string[]][];
      segName: string;
      segId: string;
    };
    assert.equal(r.ctSeries.length, 1);
    assert.deepEqual([r.segStudy], r.ctStudy, `${label}: SEG and CT share the new study`);
    assert.deepEqual([r.segFor], r.ctFor, `${label}: and the frame of reference`);
    assert.ok(r.frameRefs.length > 0);
    for (const u of r.frameRefs) assert.ok(r.ctSops.includes(u), `${label}: frame reference ${u} is a de-identified CT instance`);
    assert.deepEqual(
      r.seriesRefs.map(([s]) => s),
      r.ctSeries,
    );
    for (const [, sops] of r.seriesRefs) for (const u of sops) assert.ok(r.ctSops.includes(u));
    assert.equal(r.segName, 'ANONYMOUS');
    assert.equal(r.segId, 'ANON-1', 'one patient, one pseudonym across the CT and the SEG');
    // medseg's own SEG reader places the frames on the de-identified series
    const ctVolume = await readDicomSeries(ctDst);
    return segLabelmap(parseDicomSeg(segBytes, { source: ctVolume }), ctVolume).labelmap;
  }

  it('a SEG de-identified after the series (shared state, and through the SEG writer) references the new UIDs', async () => {
    const ct = await readDicomSeries(CT);
    const mask = Uint8Array.from(ct.data, (v) => (v > 150 ? 1 : 0));
    const segs = [{ number: 1, label: 'Bright', algorithmType: 'AUTOMATIC' as const, algorithmName: 'threshold' }];
    const plain = await writeDicomSeg(new Map([[1, mask]]), ct, segs);
    assert.ok(parseDicom(plain).dataset.string(0x00100020), 'the SEG carries the source patient ID before de-identification');

    const s1 = newDeidentifyState();
    const viaFile = await check(deidentifyFile(plain, { state: s1 }).bytes, s1, 'file');
    assert.deepEqual(Array.from(viaFile.data), Array.from(mask));

    const s2 = newDeidentifyState();
    const viaWriter = await writeDicomSeg(new Map([[1, mask]]), ct, segs, { deidentify: { state: s2 } });
    const back = await check(viaWriter, s2, 'writer');
    assert.deepEqual(Array.from(back.data), Array.from(mask));
  });

  it('an RTSTRUCT de-identified through its writer references the de-identified series and rasterises back onto it', async () => {
    const ct = await readDicomSeries(CT);
    const labels = { ...ct, data: Uint8Array.from(ct.data, (v) => (v > 150 ? 1 : 0)) };
    const state = newDeidentifyState();
    const rtBytes = await writeRtStruct(labels, ct, [{ number: 1, name: 'Bright', algorithmName: 'threshold' }], { deidentify: { state } });
    const ctDst = join(tmp, 'rt-ct');
    mkdirSync(ctDst, { recursive: true });
    for (const f of readdirSync(CT).sort()) writeFileSync(join(ctDst, f), deidentifyFile(readFileSync(join(CT, f)), { state }).bytes);
    const anonCt = await readDicomSeries(ctDst);
    const rt = parseRtStruct(rtBytes);
    const ds = parseDicom(rtBytes).dataset;
    assert.equal(ds.string(T.PatientName), 'ANONYMOUS');
    assert.equal(ds.string(T.PatientID), anonCt.meta.patientId, 'one pseudonym for the series and its structure set');
    assert.equal(ds.string(T.StudyInstanceUID), anonCt.meta.studyInstanceUID);
    assert.notEqual(ds.string(T.StudyInstanceUID), ct.meta.studyInstanceUID);
    assert.equal(rt.referencedSeriesInstanceUID, anonCt.meta.seriesInstanceUID);
    assert.equal(rt.rois[0]!.frameOfReferenceUID, anonCt.meta.frameOfReferenceUID);
    const refs = new Set(rt.rois[0]!.contours.map((c) => c.referencedSopInstanceUID));
    assert.ok(refs.size > 0 && [...refs].every((u) => anonCt.meta.sopInstanceUIDs!.includes(u!)), 'every contour references a de-identified CT instance');
    assert.deepEqual(Array.from(rtstructLabelmap(rt, anonCt).data), Array.from(labels.data));
  });

  it('with a UID secret, the same original UID maps to the same new UID in separate runs', () => {
    const bytes = readFileSync(join(CT, readdirSync(CT).sort()[0]!));
    const a = parseDicom(deidentifyFile(bytes, { uidSecret: 'k1' }).bytes).dataset.string(0x00080018);
    const b = parseDicom(deidentifyFile(bytes, { uidSecret: 'k1' }).bytes).dataset.string(0x00080018);
    const c = parseDicom(deidentifyFile(bytes, { uidSecret: 'k2' }).bytes).dataset.string(0x00080018);
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.match(a ?? '', /^2\.25\.[1-9]\d*$/);
  });
});

describe('burned-in annotation and hostile input', () => {
  const first = readFileSync(join(CT, readdirSync(CT).sort()[0]!));
  const burned = (() => {
    const f = parseDicom(first);
    f.dataset.set(el.str(0x00280301, 'CS', 'YES'));
    return writeDicom(f.dataset);
  })();

  it('refuses BurnedInAnnotation YES with a typed error, or warns when asked', () => {
    assert.throws(
      () => deidentifyFile(burned),
      (e: unknown) => e instanceof BurnedInAnnotationError && e instanceof MedsegIoError,
    );
    const r = deidentifyFile(burned, { burnedInAnnotation: 'warn' });
    assert.equal(r.report.warnings.length, 1);
    assert.equal(parseDicom(r.bytes).dataset.string(0x00100010), 'ANONYMOUS');
  });

  it('a truncated file is a typed error; in a folder it is listed as failed and the other files are still written', async () => {
    const truncated = first.subarray(0, 4000);
    assert.throws(
      () => deidentifyFile(truncated),
      (e: unknown) => e instanceof MedsegIoError && e.code === 'TRUNCATED',
    );
    const src = join(tmp, 'tree-in');
    const dst = join(tmp, 'tree-out');
    mkdirSync(join(src, 'sub'), { recursive: true });
    const files = readdirSync(CT).sort();
    writeFileSync(join(src, '01.dcm'), readFileSync(join(CT, files[0]!)));
    writeFileSync(join(src, 'sub', '02.dcm'), readFileSync(join(CT, files[1]!)));
    writeFileSync(join(src, 'cut.dcm'), truncated);
    writeFileSync(join(src, 'burned.dcm'), burned);
    writeFileSync(join(src, 'notes.txt'), 'not DICOM');
    const r = await deidentifyTree(src, dst);
    const status = Object.fromEntries(r.files.map((f) => [f.input, f.status]));
    assert.deepEqual(status, { '01.dcm': 'written', 'burned.dcm': 'failed', 'cut.dcm': 'failed', 'notes.txt': 'skipped', [join('sub', '02.dcm')]: 'written' });
    assert.equal(r.files.find((f) => f.input === 'cut.dcm')?.code, 'TRUNCATED');
    assert.ok(existsSync(join(dst, 'sub', '02.dcm')), 'relative paths are kept');
    assert.ok(!existsSync(join(dst, 'cut.dcm')) && !existsSync(join(dst, 'notes.txt')));
    const written = r.files.find((f) => f.input === '01.dcm')!;
    assert.ok(written.changes!.some((c) => c.name === "Patient's Birth Date" && c.action === 'Z' && c.after === 'empty'));
    assert.ok(written.changes!.some((c) => c.rule === 'private' && c.after === 'removed'));
    assert.ok(!JSON.stringify(written.changes).includes(parseDicom(first).dataset.string(0x00100020)!), 'the log carries no values');
  });
});
