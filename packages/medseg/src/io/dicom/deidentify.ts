/**
 * De-identification after DICOM PS3.15 Annex E, Basic Application Level
 * Confidentiality Profile, for the attributes commonly present in CT/MR/SEG
 * objects (not the full 600-row table: attributes not listed here and not
 * caught by the generic rules below are kept — review before sharing data
 * with burned-in text or free-text fields we do not know).
 *
 * Generic rules on top of the table: every private (odd-group) element is
 * removed; every instance UID (VR UI, except SOP class / transfer syntax /
 * coding scheme UIDs and the standard's own 1.2.840.10008 UIDs) is replaced
 * consistently through a UID map that the caller may share across a run
 * (same input UID -> same output UID); every date (DA/DT) is blanked unless
 * dates are kept or shifted. Sequences are processed recursively.
 */
import { DicomDataset, type DicomElement } from './dataset.ts';
import { T } from './dictionary.ts';
import { parseDicom, TS } from './parse.ts';
import { newUid } from './uid.ts';
import { dataset, el, writeDicom } from './write.ts';

export interface DeidentifyOptions {
  /** Value for PatientName (default 'ANONYMOUS'). */
  patientName?: string;
  /** Value for PatientID (default: a pseudonym 'ANON-<n>', consistent within the run). */
  patientId?: string;
  /** 'remove' (default): blank all dates/times of the profile; 'keep': keep them; 'shift': add shiftDays to every date. */
  dates?: 'remove' | 'keep' | 'shift';
  shiftDays?: number;
  /** Shared across calls for consistent UIDs / pseudonyms within a run. */
  state?: DeidentifyState;
}

export interface DeidentifyState {
  uids: Map<string, string>;
  patients: Map<string, string>;
}

export function newDeidentifyState(): DeidentifyState {
  return { uids: new Map(), patients: new Map() };
}

type Action = 'X' | 'Z' | 'D';
/** Annex E actions for the attributes commonly present (X remove, Z empty, D dummy). */
const TABLE: [number, Action][] = [
  [T.AccessionNumber, 'Z'],
  [T.InstitutionName, 'X'],
  [0x00080081, 'X'],
  [T.ReferringPhysicianName, 'Z'],
  [0x00080092, 'X'],
  [0x00080094, 'X'],
  [0x00080096, 'X'],
  [0x00081010, 'X'],
  [0x00081040, 'X'],
  [0x00081048, 'X'],
  [0x00081049, 'X'],
  [0x00081050, 'X'],
  [0x00081052, 'X'],
  [0x00081060, 'X'],
  [0x00081062, 'X'],
  [0x00081070, 'X'],
  [0x00081072, 'X'],
  [0x00081080, 'X'],
  [0x00081084, 'X'],
  [0x00082111, 'X'],
  [0x00081110, 'X'],
  [0x00081111, 'X'],
  [0x00081120, 'X'],
  [0x00081030, 'X'],
  [T.PatientName, 'D'],
  [T.PatientID, 'D'],
  [0x00100021, 'X'],
  [T.PatientBirthDate, 'Z'],
  [0x00100032, 'X'],
  [T.PatientSex, 'Z'],
  [0x00101000, 'X'],
  [0x00101001, 'X'],
  [0x00101002, 'X'],
  [0x00101005, 'X'],
  [T.PatientAge, 'X'],
  [0x00101020, 'X'],
  [0x00101030, 'X'],
  [0x00101040, 'X'],
  [0x00101060, 'X'],
  [0x00101080, 'X'],
  [0x00101090, 'X'],
  [0x00102150, 'X'],
  [0x00102152, 'X'],
  [0x00102154, 'X'],
  [0x00102160, 'X'],
  [0x00102180, 'X'],
  [0x001021b0, 'X'],
  [0x001021f0, 'X'],
  [0x00104000, 'X'],
  [T.DeviceSerialNumber, 'X'],
  [0x00181004, 'X'],
  [0x00181030, 'X'],
  [0x00181400, 'X'],
  [T.StudyID, 'Z'],
  [0x00204000, 'X'],
  [0x00321032, 'X'],
  [0x00321033, 'X'],
  [0x00321060, 'X'],
  [0x00324000, 'X'],
  [0x00380010, 'X'],
  [0x00380300, 'X'],
  [0x00400006, 'X'],
  [0x00400241, 'X'],
  [0x00400242, 'X'],
  [0x00400243, 'X'],
  [0x00400244, 'X'],
  [0x00400245, 'X'],
  [0x00400250, 'X'],
  [0x00400251, 'X'],
  [0x00400253, 'X'],
  [0x00400254, 'X'],
  [0x00400275, 'X'],
  [0x00401001, 'X'],
  [0x00402016, 'X'],
  [0x00402017, 'X'],
  [0x00401400, 'X'],
  [0x0040a123, 'X'],
  [T.ContentCreatorName, 'Z'],
  [0x4008010c, 'X'],
  [0x4008011a, 'X'],
  [0x40080202, 'X'],
];
const ACTIONS = new Map<number, Action>(TABLE);
/** Dates/times of the profile that must be present (type 1/2): emptied rather than removed. */
const ZERO_DATES = new Set<number>([T.StudyDate, T.StudyTime, T.ContentDate, T.ContentTime, T.PatientBirthDate]);
/** UIDs that name a class, syntax or scheme, not an instance: never replaced. */
const KEEP_UIDS = new Set<number>([
  T.SOPClassUID,
  T.ReferencedSOPClassUID,
  T.TransferSyntaxUID,
  T.MediaStorageSOPClassUID,
  T.ImplementationClassUID,
  0x0008010c /* CodingSchemeUID */,
  0x0040db0c /* TemplateExtensionOrganizationUID */,
]);

/** Versions of coding resources, not events about the patient. */
const KEEP_DATES = new Set<number>([0x00080106 /* ContextGroupVersion */, 0x00080107 /* ContextGroupLocalVersion */, 0x00080103 /* CodingSchemeVersion */]);

function mapUid(uid: string, state: DeidentifyState): string {
  if (!uid || uid.startsWith('1.2.840.10008.')) return uid;
  let out = state.uids.get(uid);
  if (!out) {
    out = newUid();
    state.uids.set(uid, out);
  }
  return out;
}

function shiftDate(da: string, days: number): string {
  const m = /^(\d{4})(\d{2})(\d{2})(.*)$/.exec(da);
  if (!m) return '';
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + days * 86400000;
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getUTCFullYear().toString().padStart(4, '0')}${(d.getUTCMonth() + 1).toString().padStart(2, '0')}${d.getUTCDate().toString().padStart(2, '0')}${m[4]}`;
}

function processDataset(ds: DicomDataset, opts: DeidentifyOptions, state: DeidentifyState, top: boolean): void {
  const dates = opts.dates ?? 'remove';
  for (const [tag, e] of [...ds.elements]) {
    const group = tag >>> 16;
    if (group & 1) {
      ds.delete(tag); // private tags
      continue;
    }
    const action = ACTIONS.get(tag);
    if (action === 'X') {
      ds.delete(tag);
      continue;
    }
    if (action === 'Z') {
      ds.set(emptied(e));
      continue;
    }
    if (action === 'D') {
      if (tag === T.PatientName) ds.set(el.str(tag, 'PN', opts.patientName ?? 'ANONYMOUS', ds.utf8));
      else if (tag === T.PatientID) {
        const orig = ds.string(tag) ?? '';
        let p = opts.patientId ?? state.patients.get(orig);
        if (!p) {
          p = `ANON-${state.patients.size + 1}`;
          state.patients.set(orig, p);
        }
        ds.set(el.str(tag, 'LO', p, ds.utf8));
      }
      continue;
    }
    if (e.items) {
      for (const it of e.items) processDataset(it, opts, state, false);
      continue;
    }
    if (e.vr === 'UI' && !KEEP_UIDS.has(tag) && group !== 0x0002) {
      const vals = ds.strings(tag);
      ds.set(el.str(tag, 'UI', vals.map((u) => mapUid(u, state)).join('\\')));
      continue;
    }
    if (KEEP_DATES.has(tag)) continue;
    if (e.vr === 'DA' || e.vr === 'DT' || (e.vr === 'TM' && dates === 'remove')) {
      if (dates === 'keep') continue;
      if (dates === 'shift' && e.vr !== 'TM') {
        const vals = ds.strings(tag).map((v) => shiftDate(v, opts.shiftDays ?? 0));
        ds.set(el.str(tag, e.vr, vals.join('\\')));
        continue;
      }
      if (ZERO_DATES.has(tag) || !top) ds.set(emptied(e));
      else ds.delete(tag);
    }
  }
}

function emptied(e: DicomElement): DicomElement {
  return e.items ? { ...e, items: [] } : { ...e, bytes: new Uint8Array(0), littleEndian: true };
}

/** De-identifies a dataset in place (see the module comment for what is done). */
export function deidentifyDataset(ds: DicomDataset, opts: DeidentifyOptions = {}): DicomDataset {
  const state = opts.state ?? newDeidentifyState();
  processDataset(ds, opts, state, true);
  const dates = opts.dates ?? 'remove';
  ds.set(el.str(T.PatientIdentityRemoved, 'CS', 'YES'));
  const methods = ['PS3.15 E.1.1 Basic Application Level Confidentiality Profile (medseg)'];
  const codes = [{ value: '113100', meaning: 'Basic Application Confidentiality Profile' }];
  if (dates === 'keep') {
    methods.push('Retain Longitudinal Temporal Information Full Dates');
    codes.push({ value: '113106', meaning: 'Retain Longitudinal Temporal Information Full Dates Option' });
    ds.set(el.str(T.LongitudinalTemporalInformationModified, 'CS', 'UNMODIFIED'));
  } else if (dates === 'shift') {
    methods.push('Retain Longitudinal Temporal Information Modified Dates');
    codes.push({ value: '113107', meaning: 'Retain Longitudinal Temporal Information Modified Dates Option' });
    ds.set(el.str(T.LongitudinalTemporalInformationModified, 'CS', 'MODIFIED'));
  } else {
    ds.set(el.str(T.LongitudinalTemporalInformationModified, 'CS', 'REMOVED'));
  }
  ds.set(el.str(T.DeidentificationMethod, 'LO', methods.join('; ').slice(0, 64)));
  ds.set(
    el.seq(
      T.DeidentificationMethodCodeSequence,
      codes.map((c) => dataset(el.str(T.CodeValue, 'SH', c.value), el.str(T.CodingSchemeDesignator, 'SH', 'DCM'), el.str(T.CodeMeaning, 'LO', c.meaning))),
    ),
  );
  return ds;
}

/**
 * De-identifies a dataset (in place, returned) or Part 10 bytes (a new file
 * is returned: Explicit VR Little Endian, or the original encapsulated syntax).
 */
export function deidentify(input: DicomDataset, opts?: DeidentifyOptions): DicomDataset;
export function deidentify(input: Uint8Array, opts?: DeidentifyOptions): Uint8Array;
export function deidentify(input: DicomDataset | Uint8Array, opts: DeidentifyOptions = {}): DicomDataset | Uint8Array {
  if (input instanceof DicomDataset) return deidentifyDataset(input, opts);
  const file = parseDicom(input);
  deidentifyDataset(file.dataset, opts);
  const native = [TS.ImplicitLE, TS.ExplicitLE, TS.ExplicitBE, TS.DeflatedLE] as string[];
  return writeDicom(file.dataset, { transferSyntaxUID: native.includes(file.transferSyntaxUID) ? TS.ExplicitLE : file.transferSyntaxUID });
}
