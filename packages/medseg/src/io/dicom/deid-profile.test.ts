/**
 * Every row of PS3.15 Table E.1-1 on one synthetic dataset that holds each
 * attribute (written with medseg's DICOM writer), de-identified with the
 * Basic Profile alone and with each option, then read back by pydicom: the
 * action of the row (or of the option) must have happened.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runPython } from '../../testing/python.ts';
import type { DicomElement } from './dataset.ts';
import { OPTION_CODES, PRIVATE_ROW, PROFILE_ROWS, type ProfileOption, type ProfileRow } from './deid-profile.ts';
import { deidentifyDatasetWithReport, deidentifyFile, type DeidentifyOptions } from './deidentify.ts';
import { T, tagKeyword, vrOfTag } from './dictionary.ts';
import { dataset, el, writeDicom } from './write.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-deid-profile-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const PATTERN_TAGS: Record<string, [number, string]> = {
  '50xxxxxx': [0x50003000, 'OB'],
  '60xx3000': [0x60003000, 'OW'],
  '60xx4000': [0x60004000, 'LT'],
};
const META_ROW = '00020003';
/** Command-group rows (0000,eeee) never occur in a stored file (medseg's reader leaves them out): they are checked on a dataset in memory. */
const COMMAND_ROWS = PROFILE_ROWS.filter((r) => r.tag.startsWith('0000'));
const rows = PROFILE_ROWS.filter((r) => r.tag !== META_ROW && !COMMAND_ROWS.includes(r));
const tagOfRow = (r: ProfileRow): number => PATTERN_TAGS[r.tag]?.[0] ?? parseInt(r.tag, 16) >>> 0;
const hex8 = (t: number) => t.toString(16).padStart(8, '0');

function vrOfRow(r: ProfileRow): string {
  const p = PATTERN_TAGS[r.tag];
  if (p) return p[1];
  const vr = vrOfTag(tagOfRow(r));
  if (vr !== 'UN') return vr;
  // tags the dictionary lacks: the VR their name implies
  if (/UID( List)?$/.test(r.name)) return 'UI';
  if (/Sequence/.test(r.name)) return 'SQ';
  if (/DateTime/.test(r.name)) return 'DT';
  return 'LO';
}

/** Identifying text a clean must delete (the patient's name, a date, a long number) around text it must keep; numbered per row. */
const LONG_TEXT = (i: number) => `Jane Doe lesion left lobe 20210314 555123456 #${String(i).padStart(3, '0')}`;
const SHORT_TEXT = 'Doe 5551234';
const itemUid = (i: number) => `1.2.826.0.1.3680043.10.999.${i + 1}.7`;

function sample(r: ProfileRow, i: number): DicomElement {
  const tag = tagOfRow(r);
  const vr = vrOfRow(r);
  switch (vr) {
    case 'PN':
      return el.str(tag, vr, 'Doe^Jane');
    case 'LO':
    case 'LT':
    case 'ST':
    case 'UT':
    case 'UC':
      return el.str(tag, vr, LONG_TEXT(i));
    case 'SH':
      return el.str(tag, vr, SHORT_TEXT);
    case 'CS':
      return el.str(tag, vr, 'SECRET');
    case 'AE':
      return el.str(tag, vr, 'SECRETAE');
    case 'DA':
      return el.str(tag, vr, '20210314');
    case 'DT':
      return el.str(tag, vr, '20210314101112');
    case 'TM':
      return el.str(tag, vr, '101112');
    case 'DS':
      return el.str(tag, vr, '12.5');
    case 'IS':
      return el.str(tag, vr, '42');
    case 'AS':
      return el.str(tag, vr, '042Y');
    case 'UR':
      return el.str(tag, vr, 'http://secret.example/x');
    case 'UI':
      return el.str(tag, vr, `1.2.826.0.1.3680043.10.999.${i + 1}`);
    case 'US':
    case 'SS':
    case 'UL':
    case 'SL':
    case 'FL':
    case 'FD':
      return el.nums(tag, vr, [7]);
    case 'AT':
      return el.tags(tag, [T.PatientName]);
    case 'SQ':
      return el.seq(tag, [
        dataset(
          el.str(T.ReferencedSOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
          el.str(T.ReferencedSOPInstanceUID, 'UI', itemUid(i)),
          el.str(0x0040a160 /* TextValue */, 'UT', LONG_TEXT(i)),
        ),
      ]);
    default:
      return el.bytes(tag, vr, new Uint8Array([1, 2, 3, 4]));
  }
}

const PRIVATE_CREATOR = 0x00090010;
const PRIVATE_KEPT = 0x00091001;
const PRIVATE_DROPPED = 0x00091002;

const source = dataset(
  el.str(T.SOPClassUID, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
  el.str(T.Modality, 'CS', 'CT'),
  el.str(PRIVATE_CREATOR, 'LO', 'MEDSEG TEST'),
  el.str(PRIVATE_KEPT, 'LO', 'kept private'),
  el.str(PRIVATE_DROPPED, 'LO', 'dropped private'),
  ...rows.map(sample),
);
const sourcePath = join(tmp, 'source.dcm');
const sourceBytes = writeDicom(source);
writeFileSync(sourcePath, sourceBytes);

const SHIFT = -10;
const CONFIGS: { name: string; option?: ProfileOption; opts: DeidentifyOptions }[] = [
  { name: 'basic', opts: {} },
  { name: 'full-dates', option: 'retainLongitudinalFullDates', opts: { dates: 'keep' } },
  { name: 'modified-dates', option: 'retainLongitudinalModifiedDates', opts: { dates: 'shift', shiftDays: SHIFT } },
  { name: 'patient', option: 'retainPatientCharacteristics', opts: { retainPatientCharacteristics: true } },
  { name: 'device', option: 'retainDeviceIdentity', opts: { retainDeviceIdentity: true } },
  { name: 'institution', option: 'retainInstitutionIdentity', opts: { retainInstitutionIdentity: true } },
  { name: 'uids', option: 'retainUIDs', opts: { retainUIDs: true } },
  { name: 'descriptors', option: 'cleanDescriptors', opts: { cleanDescriptors: true } },
  { name: 'structured', option: 'cleanStructuredContent', opts: { cleanStructuredContent: true } },
  { name: 'graphics', option: 'cleanGraphics', opts: { cleanGraphics: true } },
  { name: 'private', option: 'retainSafePrivate', opts: { keepPrivate: [{ group: 0x0009, creator: 'MEDSEG TEST', element: 0x01 }] } },
];
for (const c of CONFIGS) writeFileSync(join(tmp, `${c.name}.dcm`), deidentifyFile(sourceBytes, c.opts).bytes);

// pydicom's view of every top-level attribute: present, empty, value; for sequences the items' instance UIDs and text.
const REPORT = `
import sys, json, pydicom
from pydicom.tag import Tag
def val(e):
    v = e.value
    if isinstance(v, (bytes, bytearray)): return v.hex()
    if isinstance(v, (list, tuple)) or type(v).__name__ == 'MultiValue': return '\\\\'.join(str(x) for x in v)
    return str(v)
out = {}
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path, force=True)
    tags = {}
    for e in ds:
        k = '%08x' % int(e.tag)
        if e.VR == 'SQ':
            tags[k] = {'vr': 'SQ', 'empty': len(e.value) == 0, 'items': len(e.value),
                       'uids': [str(it.get((0x0008, 0x1155)).value) if (0x0008, 0x1155) in it else None for it in e.value],
                       'text': [str(it.get((0x0040, 0xA160)).value) if (0x0040, 0xA160) in it else None for it in e.value],
                       'value': None}
        else:
            tags[k] = {'vr': e.VR, 'empty': e.VM == 0 or e.value in ('', b'', None), 'value': None if e.VM == 0 else val(e)}
    codes = [str(it.CodeValue) for it in ds.get('DeidentificationMethodCodeSequence', [])]
    out[path.rsplit('/', 1)[-1][:-4]] = {'tags': tags, 'mediaSop': str(ds.file_meta.get('MediaStorageSOPInstanceUID', '')), 'codes': codes}
print(json.dumps(out))
`;

interface Attr {
  vr: string;
  empty: boolean;
  value: string | null;
  items?: number;
  uids?: (string | null)[];
  text?: (string | null)[];
}
type FileView = { tags: Record<string, Attr>; mediaSop: string; codes: string[] };
const views = JSON.parse(runPython(['-c', REPORT, sourcePath, ...CONFIGS.map((c) => join(tmp, `${c.name}.dcm`))])) as Record<string, FileView>;
const orig = views.source!;

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;
const IDENTIFYING = ['Jane', 'Doe', '20210314', '555123456', '5551234'];

/** pydicom's date (and date-time) shifted by whole days, computed in Python. */
const shiftedDates = JSON.parse(
  runPython(['-c', `import datetime, json; d = datetime.date(2021, 3, 14) + datetime.timedelta(days=${SHIFT}); print(json.dumps(d.strftime('%Y%m%d')))`]),
) as string;

function effective(r: ProfileRow, option?: ProfileOption): string {
  return (option && r.options[option]) || r.basic;
}

function check(r: ProfileRow, option: ProfileOption | undefined, out: FileView): void {
  const k = hex8(tagOfRow(r));
  const before = orig.tags[k];
  assert.ok(before && !before.empty, `the source holds ${r.name} ${k}`);
  const a = out.tags[k];
  const action = effective(r, option);
  const what = `${r.name} (${k}) ${action}${option ? ` under ${option}` : ''}`;
  const removed = a === undefined;
  const empty = a !== undefined && a.empty;
  const changedUids = a?.uids?.length && before.uids?.every((u, i) => u !== a.uids![i] && UID.test(a.uids![i] ?? ''));
  // a dummied sequence keeps its items with their instance UIDs replaced (unless Retain UIDs) and their text replaced
  const changedText = a?.text?.some((t, i) => t !== before.text?.[i]);
  const dummy = a !== undefined && !a.empty && (a.vr === 'SQ' ? a.items === before.items && Boolean(changedUids || changedText) : a.value !== before.value);
  const pseudonymised = (tagOfRow(r) === T.PatientName && a?.value === 'ANONYMOUS') || (tagOfRow(r) === T.PatientID && a?.value === 'ANON-1');
  switch (action) {
    case 'X':
      assert.ok(removed, `${what}: removed`);
      return;
    case 'Z':
      assert.ok(empty || pseudonymised, `${what}: emptied (${JSON.stringify(a)})`);
      return;
    case 'D':
      assert.ok(dummy, `${what}: a dummy value (${JSON.stringify(a)})`);
      return;
    case 'U':
      assert.ok(a && a.value && UID.test(a.value) && a.value !== before.value, `${what}: a new UID (${JSON.stringify(a)})`);
      return;
    case 'X/Z':
      assert.ok(removed || empty, `${what}: removed or emptied`);
      return;
    case 'X/D':
      assert.ok(removed || dummy, `${what}: removed or dummy`);
      return;
    case 'Z/D':
      assert.ok(empty || dummy, `${what}: emptied or dummy`);
      return;
    case 'X/Z/D':
      assert.ok(removed || empty || dummy, `${what}: removed, emptied or dummy`);
      return;
    case 'X/Z/U*':
      assert.ok(removed || empty || (a?.items === before.items && changedUids), `${what}: removed, emptied, or its instance UIDs replaced`);
      return;
    case 'K':
      assert.ok(a, `${what}: kept`);
      if (a.vr === 'SQ') assert.equal(a.items, before.items, `${what}: items kept`);
      else assert.equal(a.value, before.value, `${what}: value kept`);
      return;
    case 'C': {
      if (option === 'retainLongitudinalModifiedDates') {
        assert.ok(a, `${what}: kept, shifted`);
        if (a.vr === 'DA') assert.equal(a.value, shiftedDates, `${what}: shifted by ${SHIFT} days`);
        else if (a.vr === 'DT') assert.equal(a.value, `${shiftedDates}101112`, `${what}: shifted by ${SHIFT} days`);
        else assert.equal(a.value, before.value, `${what}: times stay`);
        return;
      }
      if (removed) {
        assert.ok(['OB', 'OW', 'OF', 'UN'].includes(before.vr), `${what}: only bitmaps and samples are removed instead of cleaned`);
        return;
      }
      const texts = a.vr === 'SQ' ? (a.text ?? []).map(String) : [String(a.value ?? '')];
      for (const t of texts) for (const id of IDENTIFYING) assert.ok(!t.includes(id), `${what}: '${id}' cleaned from '${t}'`);
      if (a.vr === 'SQ') assert.equal(a.items, before.items, `${what}: items kept`);
      if (['LO', 'LT', 'ST', 'UT', 'UC'].includes(a.vr)) assert.match(String(a.value), /lesion left lobe/, `${what}: the rest of the text stays`);
      return;
    }
    default:
      assert.fail(`unknown action ${action} for ${what}`);
  }
}

describe('PS3.15 Table E.1-1 rows, each checked on a synthetic dataset with pydicom', () => {
  it('the table is complete: every row has a tag, a name and a Basic Profile action, no tag twice', () => {
    assert.ok(PROFILE_ROWS.length >= 450, `${PROFILE_ROWS.length} rows`);
    assert.equal(new Set(PROFILE_ROWS.map((r) => r.tag)).size, PROFILE_ROWS.length);
    for (const r of PROFILE_ROWS) assert.match(r.basic, /^(D|Z|X|K|C|U|X\/Z|X\/D|Z\/D|X\/Z\/D|X\/Z\/U\*)$/, r.name);
    // the names match the data dictionary's keywords (spelling aside), so no row sits on the wrong tag
    const norm = (s: string) =>
      s
        .toLowerCase()
        .replace(/'s\b/g, '')
        .replace(/\(trial\)|[^a-z0-9]/g, '');
    let compared = 0;
    for (const r of rows) {
      const kw = tagKeyword(tagOfRow(r));
      if (!kw || PATTERN_TAGS[r.tag]) continue;
      compared++;
      assert.equal(norm(kw.replace(/^RETIRED_/, '')).replace(/trial$/, ''), norm(r.name), `${r.tag}: table says '${r.name}', dictionary '${kw}'`);
    }
    assert.ok(compared > 400, `${compared} rows compared with the dictionary`);
  });

  for (const c of CONFIGS) {
    it(`${c.name}: every row's action happened`, () => {
      const out = views[c.name]!;
      for (const r of rows) check(r, c.option, out);
      assert.deepEqual(out.codes, ['113100', ...(c.option ? [OPTION_CODES[c.option].value] : [])], 'CID 7050 codes: the profile and the option');
      assert.ok(out.tags['00120062']?.value === 'YES', 'PatientIdentityRemoved YES');
      // (0002,0003) Media Storage SOP Instance UID, U: follows the replaced SOP Instance UID
      const sop = out.tags['00080018']!.value!;
      assert.equal(out.mediaSop, sop);
      if (c.option !== 'retainUIDs') assert.notEqual(sop, orig.tags['00080018']!.value);
    });
  }

  it('command-group rows, on a dataset in memory', () => {
    assert.deepEqual(
      COMMAND_ROWS.map((r) => [r.tag, r.basic, r.options.retainUIDs]),
      [
        ['00001000', 'X', 'K'],
        ['00001001', 'U', 'K'],
      ],
    );
    const make = () => dataset(el.str(0x00001000, 'UI', '1.2.826.0.1.3680043.10.999.9001'), el.str(0x00001001, 'UI', '1.2.826.0.1.3680043.10.999.9002'));
    const basic = make();
    deidentifyDatasetWithReport(basic);
    assert.equal(basic.has(0x00001000), false, 'Affected SOP Instance UID removed');
    assert.match(basic.string(0x00001001) ?? '', /^2\.25\.\d+$/, 'Requested SOP Instance UID replaced');
    const kept = make();
    deidentifyDatasetWithReport(kept, { retainUIDs: true });
    assert.equal(kept.string(0x00001000), '1.2.826.0.1.3680043.10.999.9001');
    assert.equal(kept.string(0x00001001), '1.2.826.0.1.3680043.10.999.9002');
  });

  it('private attributes: removed, or only the whitelisted element kept with its creator (Retain Safe Private)', () => {
    assert.equal(PRIVATE_ROW.basic, 'X');
    const p = (f: string) => ['00090010', '00091001', '00091002'].map((k) => views[f]!.tags[k] !== undefined);
    assert.deepEqual(p('source'), [true, true, true]);
    assert.deepEqual(p('basic'), [false, false, false]);
    assert.deepEqual(p('private'), [true, true, false]);
    assert.equal(views.private!.tags['00091001']!.value, 'kept private');
  });
});
