/**
 * Specific Character Sets on real files: the character-set examples of PS3.5
 * Annexes H-K and more (Japanese ISO 2022 IR 13 / 87, Korean IR 149, Chinese
 * UTF-8 and GB18030, Latin-1, Greek, Arabic, Hebrew, Cyrillic, sequence items
 * with their own set) as Debian's python3-pydicom ships them, plus files
 * pydicom writes at test time (ISO_IR 101 / 148 / 166, GBK, ISO 2022 IR 13 +
 * 87 half-width katakana, IR 87 + 159, Latin-1 + Cyrillic code extensions).
 * Every text element, in sequences too, must read as pydicom decodes it.
 * ISO 2022 IR 58 (GB 2312), which pydicom 2 leaves undecoded, is checked
 * against dcmtk's conversion to UTF-8 (dcmconv +U8, glibc iconv). De-identified
 * files come out in UTF-8 with the kept text unchanged, as pydicom reads them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { run, skipUnless } from '../../testing/dicom-compressed.ts';
import { runPython } from '../../testing/python.ts';
import { decodeDicomText } from './charset.ts';
import { deidentifyFile } from './deidentify.ts';
import type { DicomDataset } from './dataset.ts';
import { tagHex } from './dictionary.ts';
import { parseDicom } from './parse.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-charset-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const PYDICOM_FILES = (() => {
  try {
    return join(runPython(['-c', 'import os, pydicom.data; print(os.path.dirname(pydicom.data.__file__))']).trim(), 'charset_files');
  } catch {
    return '';
  }
})();

const TEXT_VRS = new Set(['PN', 'SH', 'LO', 'ST', 'LT', 'UT', 'UC']);

/** Every non-empty standard text element (path -> value, multiple values joined by backslash, trimmed) as pydicom decodes them. */
const REF = `
import sys, json, pydicom
from pydicom.multival import MultiValue
TEXT = {'PN', 'SH', 'LO', 'ST', 'LT', 'UT', 'UC'}
def walk(ds, prefix, out):
    for e in ds:
        if e.tag.group % 2:
            continue
        path = prefix + '(%04x,%04x)' % (e.tag.group, e.tag.element)
        if e.VR == 'SQ':
            for i, item in enumerate(e.value):
                walk(item, path + '[%d].' % i, out)
        elif e.VR in TEXT and e.value is not None:
            v = e.value
            s = '\\\\'.join(str(x) for x in v) if isinstance(v, MultiValue) else str(v)
            s = s.strip(' \\0')
            if s:
                out[path] = s
res = {}
for p in sys.argv[1:]:
    out = {}
    walk(pydicom.dcmread(p), '', out)
    res[p] = out
print(json.dumps(res, ensure_ascii=False))
`;

function walk(ds: DicomDataset, prefix: string, out: Record<string, string>): void {
  for (const e of ds.elements.values()) {
    if ((e.tag >>> 16) & 1) continue; // private: their VRs come from vendor dictionaries
    const path = `${prefix}${tagHex(e.tag).toLowerCase()}`;
    if (e.items) e.items.forEach((item, i) => walk(item, `${path}[${i}].`, out));
    else if (TEXT_VRS.has(e.vr)) {
      // pydicom's PersonName drops empty trailing component groups ('Wang^XiaoDong=王^小東=' -> '...小東').
      const v = (ds.string(e.tag) ?? '').replace(/^[ \0]+|[ \0]+$/g, '').replace(e.vr === 'PN' ? /=+$/ : /$^/, '');
      if (v) out[path] = v;
    }
  }
}

function ours(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  walk(parseDicom(readFileSync(path), { path }).dataset, '', out);
  return out;
}

/** pydicom writes one file per (SpecificCharacterSet, Patient's Name, Study Description); its own encoder makes the bytes. */
const MADE: [name: string, charset: string[], patientName: string, description: string][] = [
  ['latin2', ['ISO_IR 101'], 'Dvořák^Antonín', 'Vyšetření hrudníku'],
  ['latin5', ['ISO_IR 148'], 'Çelik^Ayşe', 'Göğüs'],
  ['thai', ['ISO_IR 166'], 'สมชาย^ใจดี', 'ทรวงอก'],
  ['gbk', ['GBK'], '王^小明', '胸部检查'],
  ['halfwidth', ['ISO 2022 IR 13', 'ISO 2022 IR 87'], 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう', 'ｷｮｳﾌﾞ'],
  ['jisx0212', ['', 'ISO 2022 IR 87', 'ISO 2022 IR 159'], '森^鷗外', '鷗の写真'],
  ['latin-cyrillic', ['', 'ISO 2022 IR 100', 'ISO 2022 IR 144'], 'Müller^Люк', 'Grüße Привет'],
];
/** Python: writes a Dataset as an Explicit VR Little Endian Part 10 file (the file meta pydicom requires). */
const PY_SAVE = `
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
def save(ds, path):
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.1'
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
    ds.file_meta.MediaStorageSOPInstanceUID = '2.25.1'
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)
`;

const MAKE = `${PY_SAVE}
import sys, json
for out, cs, name, desc in json.loads(sys.argv[1]):
    ds = Dataset()
    ds.SpecificCharacterSet = cs
    ds.PatientName = name
    ds.StudyDescription = desc
    save(ds, out)
`;

describe('Specific Character Sets', () => {
  it(
    'the PS3.5 character-set example files pydicom ships read as pydicom decodes them',
    { skip: PYDICOM_FILES && existsSync(PYDICOM_FILES) ? false : 'needs python3-pydicom' },
    () => {
      const files = readdirSync(PYDICOM_FILES)
        .filter((f) => f.endsWith('.dcm'))
        .sort()
        .map((f) => join(PYDICOM_FILES, f));
      assert.ok(files.length >= 15, `${files.length} example files`);
      const ref = JSON.parse(runPython(['-c', REF, ...files])) as Record<string, Record<string, string>>;
      let compared = 0;
      for (const f of files) {
        assert.deepEqual(ours(f), ref[f], f);
        compared += Object.keys(ref[f]!).length;
      }
      console.log(`${files.length} files, ${compared} text elements identical to pydicom`);
      // The Japanese and Korean names are really decoded (not Latin-1 mojibake that pydicom would share).
      assert.equal(ours(join(PYDICOM_FILES, 'chrH31.dcm'))['(0010,0010)'], 'Yamada^Tarou=山田^太郎=やまだ^たろう');
      assert.equal(ours(join(PYDICOM_FILES, 'chrI2.dcm'))['(0010,0010)'], 'Hong^Gildong=洪^吉洞=홍^길동');
    },
  );

  it('files pydicom writes in other sets and code extensions read as pydicom decodes them', () => {
    const jobs = MADE.map(([name, cs, pn, desc]) => [join(tmp, `${name}.dcm`), cs, pn, desc]);
    runPython(['-c', MAKE, JSON.stringify(jobs)]);
    const paths = jobs.map((j) => j[0] as string);
    const ref = JSON.parse(runPython(['-c', REF, ...paths])) as Record<string, Record<string, string>>;
    MADE.forEach(([name, , pn, desc], i) => {
      const got = ours(paths[i]!);
      assert.deepEqual(got, ref[paths[i]!], name);
      assert.equal(got['(0010,0010)'], pn, `${name}: the name pydicom encoded`);
      assert.equal(got['(0008,1030)'], desc, `${name}: the description`);
    });
    // De-identified with Clean Descriptors: UTF-8 out, the cleaned description keeps its characters.
    const deid = paths.map((p) => {
      const out = p.replace(/\.dcm$/, '-deid.dcm');
      const { bytes, report } = deidentifyFile(readFileSync(p), { cleanDescriptors: true });
      writeFileSync(out, bytes);
      return { out, warnings: report.warnings };
    });
    const deidRef = JSON.parse(runPython(['-c', REF, ...deid.map((d) => d.out)])) as Record<string, Record<string, string>>;
    MADE.forEach(([name, charset, , desc], i) => {
      const { out, warnings } = deid[i]!;
      const got = ours(out);
      assert.deepEqual(got, deidRef[out], `${name} de-identified: medseg and pydicom agree`);
      assert.equal(got['(0008,1030)'], desc, `${name}: the cleaned description`);
      assert.equal(got['(0010,0010)'], 'ANONYMOUS');
      const simple = charset.length === 1 && /ISO_IR (100|192)/.test(charset[0]!);
      assert.equal(parseDicom(readFileSync(out)).dataset.string(0x00080005), simple ? charset[0] : 'ISO_IR 192', name);
      assert.equal(
        warnings.some((w) => /re-encoded as UTF-8/.test(w)),
        !simple,
        name,
      );
    });
  });

  it('ISO 2022 IR 58 (GB 2312 in G1) reads as dcmtk converts it to UTF-8', { skip: skipUnless(['dcmconv']) }, () => {
    const src = join(tmp, 'ir58.dcm');
    runPython([
      '-c',
      `${PY_SAVE}
import sys
ds = Dataset()
ds.SpecificCharacterSet = ['', 'ISO 2022 IR 58']
esc = b'\\x1b$)A'
ds.add_new(0x00100010, 'PN', b'Zhang^San=' + esc + '张'.encode('gb2312') + b'^' + esc + '三'.encode('gb2312'))
ds.add_new(0x00081030, 'LO', esc + '胸部检查 CT'.encode('gb2312'))
save(ds, sys.argv[1])
`,
      src,
    ]);
    const utf8 = join(tmp, 'ir58-utf8.dcm');
    run('dcmconv', ['+U8', src, utf8]);
    const ref = (JSON.parse(runPython(['-c', REF, utf8])) as Record<string, Record<string, string>>)[utf8]!;
    assert.equal(ref['(0010,0010)'], 'Zhang^San=张^三');
    assert.deepEqual(ours(src), ref);
  });

  it('decodeDicomText: unknown escapes and odd 94² runs give U+FFFD, delimiters reset the sets', () => {
    const b = (...xs: (number | string)[]) => Uint8Array.from(xs.flatMap((x) => (typeof x === 'string' ? [...Buffer.from(x, 'latin1')] : [x])));
    // JIS X 0208 'やまだ' then a backslash in G0 ASCII after ESC ( B.
    assert.equal(decodeDicomText(b(0x1b, '$B', '$d$^$@', 0x1b, '(B', '\\x'), ['', 'ISO 2022 IR 87']), 'やまだ\\x');
    assert.equal(decodeDicomText(b(0x1b, '$B', '$d$', 0x1b, '(B'), ['', 'ISO 2022 IR 87']), 'や\ufffd');
    assert.equal(decodeDicomText(b(0x1b, '%G', 'a'), ['', 'ISO 2022 IR 87']), '\ufffd%Ga');
    // Latin-1 G1 after a person-name delimiter returns to the initial (Cyrillic) set.
    assert.equal(decodeDicomText(b(0x1b, '-A', 0xfc, '^', 0xbb), ['ISO 2022 IR 144'], true), 'ü^Л');
  });
});
