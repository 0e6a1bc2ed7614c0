/**
 * De-identification after DICOM PS3.15 Annex E: the Basic Application Level
 * Confidentiality Profile with its options, applied from the full Table E.1-1
 * in deid-profile.ts, with a log of every change (tags, names and actions,
 * never the values).
 *
 * Actions: X removes; Z empties (a sequence: no items) — except Patient's
 * Name and Patient ID, which get a pseudonym (the standard allows a dummy
 * value for Z); D puts a dummy value of the VR ('ANONYMIZED', 19000101,
 * 000000, 0, zero bytes; a sequence keeps its items with every text, date and
 * person name in them replaced by dummies, codes kept); U replaces each UID
 * through a map shared across a run (`state`), so a series, its study and a
 * SEG or RTSTRUCT that references them keep consistent references; with
 * `uidSecret` the new UID is derived from the old one (HMAC-SHA256 as a
 * name-based UUID under 2.25), the same in every run with that secret; K
 * keeps (the items of a kept sequence are still processed); C cleans.
 *
 * Compound actions follow the IOD types of the objects medseg handles: Type 1
 * (D) or Type 2 (Z) for Content Date/Time, Device Serial Number and
 * Acquisition DateTime of enhanced multi-frame objects and SEG, Structure Set
 * Time and Operators' Name of RTSTRUCT; otherwise the first action (X, or Z
 * for Z/D). X/Z/U* keeps the reference sequence with its instance UIDs
 * replaced: derived objects need it, and once its UIDs are replaced it holds
 * nothing identifying.
 *
 * Cleaning (C) is conservative: free text keeps only what remains after every
 * identifying value of the dataset (person-name components, patient and
 * other IDs, accession and study numbers, institution and station names,
 * dates in common spellings) and every run of five or more digits are
 * deleted; it may delete harmless numbers too. A sequence to clean keeps its
 * items with the same cleaning applied to their text and dummies for person
 * names. Under Clean Graphics, overlay and curve data (bitmaps and samples,
 * which cannot be searched for text) are still removed. Under Retain
 * Longitudinal Temporal Information with Modified Dates, dates and date-times
 * shift by a whole number of days and times stay.
 *
 * Attributes the table does not list get generic rules: private elements are
 * removed unless a `keepPrivate` rule names them (Retain Safe Private); UIDs
 * other than class, transfer-syntax and standard (1.2.840.10008) UIDs are
 * replaced like U; dates, times and date-times are removed (emptied inside
 * sequence items), or kept or shifted with the temporal options, except the
 * versions of coding resources and templates; person names are emptied.
 *
 * Text in a character set other than ASCII, Latin-1 and UTF-8 (ISO 2022
 * code extensions, GB18030, ...) is first converted to UTF-8 (ISO_IR 192),
 * with a warning, so that rewritten values keep their characters.
 *
 * BurnedInAnnotation YES refuses the file (BurnedInAnnotationError) unless
 * `burnedInAnnotation: 'warn'`: the pixels are not cleaned.
 */
import { createHmac } from 'node:crypto';
import { MedsegIoError } from '../errors.ts';
import { transcodeToUtf8 } from './charset.ts';
import { DicomDataset, type DicomElement } from './dataset.ts';
import { BASIC_PROFILE_CODE, OPTION_CODES, PRIVATE_ROW, profileRow, type OptionAction, type ProfileOption, type ProfileRow } from './deid-profile.ts';
import { T, tagHex, tagKeyword } from './dictionary.ts';
import { parseDicom, TS } from './parse.ts';
import { newUid } from './uid.ts';
import { dataset, el, writeDicom } from './write.ts';

/** A private data element known to be safe: group (odd), private creator, and the element's low byte (gggg,xxEE). */
export interface PrivateTagRule {
  group: number;
  creator: string;
  element: number;
}

export interface DeidentifyOptions {
  /** Value for Patient's Name (default 'ANONYMOUS'). */
  patientName?: string;
  /** Value for Patient ID (default: a pseudonym 'ANON-<n>', one per original ID within the run). */
  patientId?: string;
  /** 'remove' (default); 'keep': Retain Longitudinal Temporal Information Full Dates; 'shift': Modified Dates, by shiftDays. */
  dates?: 'remove' | 'keep' | 'shift';
  shiftDays?: number;
  retainPatientCharacteristics?: boolean;
  retainDeviceIdentity?: boolean;
  retainInstitutionIdentity?: boolean;
  retainUIDs?: boolean;
  cleanDescriptors?: boolean;
  cleanStructuredContent?: boolean;
  cleanGraphics?: boolean;
  /** Retain Safe Private: the private elements to keep (all others are removed). */
  keepPrivate?: readonly PrivateTagRule[];
  /** BurnedInAnnotation YES: 'refuse' (default) throws BurnedInAnnotationError, 'warn' de-identifies the header and reports a warning. */
  burnedInAnnotation?: 'refuse' | 'warn';
  /** Derive replacement UIDs from this secret (same result in every run) instead of random ones. */
  uidSecret?: string;
  /** Shared across calls for consistent UIDs and pseudonyms within a run. */
  state?: DeidentifyState;
}

export interface DeidentifyState {
  uids: Map<string, string>;
  patients: Map<string, string>;
}

export function newDeidentifyState(): DeidentifyState {
  return { uids: new Map(), patients: new Map() };
}

/** One change: where, which attribute, the action, and what the attribute became (values are never logged). */
export interface DeidChange {
  /** Tag path, e.g. (0008,1140)[0].(0008,1155). */
  path: string;
  tag: string;
  name: string;
  /** Table action applied (D, Z, X, K, C, U, U*), or 'set' for the de-identification method attributes. */
  action: string;
  /** 'profile': a Table E.1-1 row; 'private': the private-attributes row; 'generic': a rule for attributes the table does not list; 'method': added. */
  rule: 'profile' | 'private' | 'generic' | 'method';
  before: 'present' | 'absent';
  after: 'removed' | 'empty' | 'dummy' | 'pseudonym' | 'remapped' | 'cleaned' | 'shifted' | 'kept' | 'set';
}

export interface DeidReport {
  changes: DeidChange[];
  warnings: string[];
  /** Profile options in effect (each adds its CID 7050 code). */
  options: ProfileOption[];
}

/** The dataset says its pixels carry burned-in text (BurnedInAnnotation YES), which header de-identification does not remove. */
export class BurnedInAnnotationError extends MedsegIoError {
  constructor(path?: string) {
    super(
      'BAD_DATA',
      'BurnedInAnnotation is YES: the pixels carry identifying text that de-identification does not remove (use burned-in "warn" to continue anyway)',
      path,
    );
  }
}

const BURNED_IN_ANNOTATION = 0x00280301;
const TEXT_VRS = new Set(['AE', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);
const DATE_VRS = new Set(['DA', 'DT', 'TM']);
const DUMMY: Record<string, string> = {
  AE: 'ANONYMIZED',
  AS: '000Y',
  CS: 'ANONYMIZED',
  DA: '19000101',
  DS: '0',
  DT: '19000101000000',
  IS: '0',
  LO: 'ANONYMIZED',
  LT: 'ANONYMIZED',
  PN: 'ANONYMIZED',
  SH: 'ANONYMIZED',
  ST: 'ANONYMIZED',
  TM: '000000',
  UC: 'ANONYMIZED',
  UR: 'urn:anonymized',
  UT: 'ANONYMIZED',
};
/** Coded-entry attributes: codes are not identifying and keep their values inside dummied or cleaned sequences. */
const CODE_KEYS = new Set<number>([
  T.CodeValue,
  T.CodingSchemeDesignator,
  0x00080103 /* CodingSchemeVersion */,
  T.CodeMeaning,
  0x00080105 /* MappingResource */,
  0x0008010f /* ContextIdentifier */,
  0x00080119 /* LongCodeValue */,
  0x00080120 /* URNCodeValue */,
]);
/** UIDs that name a class, syntax or scheme, not an instance: never replaced. */
const CLASS_UIDS = new Set<number>([
  T.SOPClassUID,
  T.ReferencedSOPClassUID,
  T.TransferSyntaxUID,
  T.MediaStorageSOPClassUID,
  T.ImplementationClassUID,
  0x00041510 /* ReferencedSOPClassUIDInFile */,
  0x0008001a /* RelatedGeneralSOPClassUID */,
  0x0008001b /* OriginalSpecializedSOPClassUID */,
  0x00080062 /* SOPClassesInStudy */,
  0x0008010c /* CodingSchemeUID */,
  0x00080117 /* ContextUID */,
  0x0008010d /* ContextGroupExtensionCreatorUID */,
]);
/** Versions of coding resources and templates: not events about the patient. */
const KEEP_DATES = new Set<number>([
  0x00080106 /* ContextGroupVersion */, 0x00080107 /* ContextGroupLocalVersion */, 0x0040db06 /* TemplateVersion */, 0x0040db07 /* TemplateLocalVersion */,
]);
const SEG_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';
const RTSTRUCT_CLASS = '1.2.840.10008.5.1.4.1.1.481.3';
/** Attributes whose text identifies the patient, the visit or the site: their values are what cleaning deletes from free text. */
const IDENTIFYING_VALUES = [
  T.PatientID,
  0x00101000 /* OtherPatientIDs */,
  0x00100021 /* IssuerOfPatientID */,
  T.AccessionNumber,
  T.StudyID,
  T.InstitutionName,
  0x00080081 /* InstitutionAddress */,
  0x00081040 /* InstitutionalDepartmentName */,
  0x00081010 /* StationName */,
  0x00101040 /* PatientAddress */,
  0x00102154 /* PatientTelephoneNumbers */,
  0x00101090 /* MedicalRecordLocator */,
  0x00380010 /* AdmissionID */,
  0x00400253 /* PerformedProcedureStepID */,
  0x00401001 /* RequestedProcedureID */,
  T.DeviceSerialNumber,
];

interface Ctx {
  opts: DeidentifyOptions;
  state: DeidentifyState;
  enabled: ProfileOption[];
  /** IOD type (1 or 2) of top-level attributes with compound actions, for the object at hand. */
  required: Map<number, 1 | 2>;
  identifiers: RegExp | undefined;
  changes: DeidChange[];
}

type Mode = 'normal' | 'dummy' | 'clean';

/** The profile options a set of DeidentifyOptions turns on. */
export function enabledOptions(o: DeidentifyOptions): ProfileOption[] {
  const out: ProfileOption[] = [];
  if (o.keepPrivate?.length) out.push('retainSafePrivate');
  if (o.retainUIDs) out.push('retainUIDs');
  if (o.retainDeviceIdentity) out.push('retainDeviceIdentity');
  if (o.retainInstitutionIdentity) out.push('retainInstitutionIdentity');
  if (o.retainPatientCharacteristics) out.push('retainPatientCharacteristics');
  if (o.dates === 'keep') out.push('retainLongitudinalFullDates');
  if (o.dates === 'shift') out.push('retainLongitudinalModifiedDates');
  if (o.cleanDescriptors) out.push('cleanDescriptors');
  if (o.cleanStructuredContent) out.push('cleanStructuredContent');
  if (o.cleanGraphics) out.push('cleanGraphics');
  return out;
}

function requirements(ds: DicomDataset): Map<number, 1 | 2> {
  const m = new Map<number, 1 | 2>();
  const sop = ds.string(T.SOPClassUID);
  const enhanced = ds.has(T.SharedFunctionalGroupsSequence) || ds.has(T.PerFrameFunctionalGroupsSequence);
  if (enhanced || sop === SEG_CLASS) {
    // Multi-frame Functional Groups: Content Date/Time Type 1; Enhanced General Equipment: Device Serial Number Type 1
    m.set(T.ContentDate, 1);
    m.set(T.ContentTime, 1);
    m.set(T.DeviceSerialNumber, 1);
  }
  if (enhanced && sop !== SEG_CLASS) m.set(0x0008002a /* AcquisitionDateTime, Type 1C in enhanced images */, 1);
  if (sop === RTSTRUCT_CLASS) {
    m.set(0x30060009 /* StructureSetTime */, 2);
    m.set(0x00081070 /* OperatorsName, RT Series */, 2);
  }
  return m;
}

const RANK: Record<OptionAction, number> = { X: 1, C: 2, K: 3 };

/** The action for a row given the options in effect: an option's action replaces the Basic one; among options the most retaining wins. */
function rowAction(row: ProfileRow, ctx: Ctx): string {
  let best: OptionAction | undefined;
  for (const o of ctx.enabled) {
    const a = row.options[o];
    if (a && (best === undefined || RANK[a] > RANK[best])) best = a;
  }
  if (best) return best;
  const need = ctx.required.get(parseInt(row.tag, 16) >>> 0);
  switch (row.basic) {
    case 'X/Z':
      return need ? 'Z' : 'X';
    case 'X/D':
      return need ? 'D' : 'X';
    case 'Z/D':
      return need === 1 ? 'D' : 'Z';
    case 'X/Z/D':
      return need === 1 ? 'D' : need === 2 ? 'Z' : 'X';
    case 'X/Z/U*':
      return 'U*';
    default:
      return row.basic;
  }
}

function nameOf(tag: number, row?: ProfileRow): string {
  return row?.name ?? tagKeyword(tag) ?? ((tag >>> 16) & 1 ? 'private' : 'unknown');
}

function log(ctx: Ctx, path: string, tag: number, action: string, rule: DeidChange['rule'], after: DeidChange['after'], row?: ProfileRow): void {
  ctx.changes.push({ path, tag: tagHex(tag), name: nameOf(tag, row), action, rule, before: after === 'set' ? 'absent' : 'present', after });
}

function uidFor(uid: string, ctx: Ctx): string {
  if (!uid || uid.startsWith('1.2.840.10008.')) return uid;
  let out = ctx.state.uids.get(uid);
  if (!out) {
    if (ctx.opts.uidSecret !== undefined) {
      const b = createHmac('sha256', ctx.opts.uidSecret).update(uid).digest().subarray(0, 16);
      b[6] = (b[6]! & 0x0f) | 0x50; // name-based UUID (version 5 layout, RFC 4122 variant)
      b[8] = (b[8]! & 0x3f) | 0x80;
      out = `2.25.${BigInt(`0x${Buffer.from(b).toString('hex')}`).toString()}`;
    } else out = newUid();
    ctx.state.uids.set(uid, out);
  }
  return out;
}

function remapUids(ds: DicomDataset, tag: number, ctx: Ctx): void {
  ds.set(
    el.str(
      tag,
      'UI',
      ds.strings(tag).map((u) => uidFor(u, ctx)),
    ),
  );
}

function emptied(e: DicomElement): DicomElement {
  return e.items ? { ...e, items: [] } : { tag: e.tag, vr: e.vr, bytes: new Uint8Array(0), littleEndian: true };
}

function shiftDate(da: string, days: number): string {
  const m = /^(\d{4})(\d{2})(\d{2})(.*)$/.exec(da);
  if (!m) return '';
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + days * 86400000);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number, w: number) => n.toString().padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1, 2)}${p(d.getUTCDate(), 2)}${m[4]}`;
}

function shifted(ds: DicomDataset, e: DicomElement, ctx: Ctx): DicomElement {
  return el.str(
    e.tag,
    e.vr,
    ds.strings(e.tag).map((v) => shiftDate(v, ctx.opts.shiftDays ?? 0)),
  );
}

/** A non-empty value of the element's VR that carries no information. */
function dummyElement(ds: DicomDataset, e: DicomElement, ctx: Ctx): DicomElement {
  if (e.vr === 'UI')
    return el.str(
      e.tag,
      'UI',
      ds.strings(e.tag).map((u) => uidFor(u, ctx)),
    );
  const text = DUMMY[e.vr];
  if (text !== undefined) return el.str(e.tag, e.vr, text, ds.utf8);
  const width = Math.max(2, e.bytes.length - (e.bytes.length % 2));
  return { tag: e.tag, vr: e.vr, bytes: new Uint8Array(width), littleEndian: true };
}

function cleanText(s: string, ctx: Ctx): string {
  let out = ctx.identifiers ? s.replace(ctx.identifiers, ' ') : s;
  out = out.replace(/\b\d{1,4}[-./]\d{1,2}[-./]\d{1,4}\b/g, ' ').replace(/\d{5,}/g, ' ');
  return out.replace(/\s+/g, ' ').trim();
}

function cleanedElement(ds: DicomDataset, e: DicomElement, ctx: Ctx): DicomElement {
  const v = ds.strings(e.tag).map((s) => cleanText(s, ctx));
  return v.every((s) => s === '') ? emptied(e) : el.str(e.tag, e.vr, v, ds.utf8);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every identifying value of the dataset as one case-insensitive pattern (longest first), for cleaning free text. */
function identifyingPattern(ds: DicomDataset): RegExp | undefined {
  const words = new Set<string>();
  const add = (s: string) => {
    const t = s.trim();
    if (t.length >= 2) words.add(t);
  };
  const walk = (d: DicomDataset) => {
    for (const [tag, e] of d.elements) {
      if (e.items) e.items.forEach(walk);
      else if (e.vr === 'PN') for (const v of d.strings(tag)) v.split(/[\^=]/).forEach(add);
      else if (e.vr === 'DA')
        for (const v of d.strings(tag)) {
          const m = /^(\d{4})(\d{2})(\d{2})$/.exec(v);
          if (!m) continue;
          const [, y, mo, da] = m as unknown as [string, string, string, string];
          for (const f of [v, `${y}-${mo}-${da}`, `${da}.${mo}.${y}`, `${mo}/${da}/${y}`, `${da}/${mo}/${y}`]) add(f);
        }
    }
    for (const tag of IDENTIFYING_VALUES) for (const v of d.strings(tag)) add(v);
  };
  walk(ds);
  if (!words.size) return undefined;
  const sorted = [...words].sort((a, b) => b.length - a.length).map(escapeRegExp);
  return new RegExp(sorted.join('|'), 'gi');
}

/** Private tags of one dataset that a keepPrivate rule names, with the private creator elements they need. */
function privateToKeep(ds: DicomDataset, ctx: Ctx): Set<number> {
  const keep = new Set<number>();
  const rules = ctx.opts.keepPrivate;
  if (!rules?.length) return keep;
  for (const tag of ds.elements.keys()) {
    const group = tag >>> 16;
    const element = tag & 0xffff;
    if (!(group & 1) || element < 0x1000) continue;
    const block = element >>> 8;
    const creatorTag = ((group << 16) | block) >>> 0;
    const creator = ds.string(creatorTag);
    if (creator === undefined) continue;
    if (rules.some((r) => r.group === group && r.creator === creator && r.element === (element & 0xff))) {
      keep.add(tag);
      keep.add(creatorTag);
    }
  }
  return keep;
}

function processItems(e: DicomElement, ctx: Ctx, path: string, mode: Mode): void {
  e.items?.forEach((item, i) => processDataset(item, ctx, `${path}[${i}].`, mode));
}

function processDataset(ds: DicomDataset, ctx: Ctx, prefix: string, mode: Mode): void {
  const keepPrivate = privateToKeep(ds, ctx);
  for (const [tag, e] of [...ds.elements]) {
    const group = tag >>> 16;
    if (group === 0x0002 || group === 0xfffe) continue; // file meta is rewritten by the writer; item delimiters are structure
    const path = `${prefix}${tagHex(tag)}`;
    if (group & 1) {
      if (keepPrivate.has(tag)) {
        log(ctx, path, tag, 'C', 'private', 'kept', PRIVATE_ROW);
        if (e.items) processItems(e, ctx, path, mode);
      } else {
        ds.delete(tag);
        log(ctx, path, tag, 'X', 'private', 'removed', PRIVATE_ROW);
      }
      continue;
    }
    const row = profileRow(tag);
    if (row) applyRow(ds, e, row, ctx, path, mode);
    else applyGeneric(ds, e, ctx, path, mode);
  }
}

function applyRow(ds: DicomDataset, e: DicomElement, row: ProfileRow, ctx: Ctx, path: string, mode: Mode): void {
  const tag = e.tag;
  const action = rowAction(row, ctx);
  switch (action) {
    case 'X':
      ds.delete(tag);
      log(ctx, path, tag, 'X', 'profile', 'removed', row);
      return;
    case 'Z':
      if (tag === T.PatientName) {
        ds.set(el.str(tag, 'PN', ctx.opts.patientName ?? 'ANONYMOUS', ds.utf8));
        log(ctx, path, tag, 'Z', 'profile', 'pseudonym', row);
      } else if (tag === T.PatientID) {
        const orig = ds.string(tag) ?? '';
        let p = ctx.opts.patientId ?? ctx.state.patients.get(orig);
        if (!p) {
          p = `ANON-${ctx.state.patients.size + 1}`;
          ctx.state.patients.set(orig, p);
        }
        ds.set(el.str(tag, 'LO', p, ds.utf8));
        log(ctx, path, tag, 'Z', 'profile', 'pseudonym', row);
      } else {
        ds.set(emptied(e));
        log(ctx, path, tag, 'Z', 'profile', 'empty', row);
      }
      return;
    case 'D':
      if (e.items) processItems(e, ctx, path, 'dummy');
      else ds.set(dummyElement(ds, e, ctx));
      log(ctx, path, tag, 'D', 'profile', 'dummy', row);
      return;
    case 'K':
      if (e.items) processItems(e, ctx, path, mode);
      if (row.basic !== 'K') log(ctx, path, tag, 'K', 'profile', 'kept', row);
      return;
    case 'C':
      applyClean(ds, e, row, ctx, path);
      return;
    case 'U':
    case 'U*':
      if (e.items) processItems(e, ctx, path, mode);
      else if (e.vr === 'UI') remapUids(ds, tag, ctx);
      else ds.set(dummyElement(ds, e, ctx));
      log(ctx, path, tag, action, 'profile', 'remapped', row);
      return;
  }
}

function applyClean(ds: DicomDataset, e: DicomElement, row: ProfileRow, ctx: Ctx, path: string): void {
  const tag = e.tag;
  if (row.options.retainLongitudinalModifiedDates === 'C' && ctx.opts.dates === 'shift') {
    if (e.vr === 'DA' || e.vr === 'DT') {
      ds.set(shifted(ds, e, ctx));
      log(ctx, path, tag, 'C', 'profile', 'shifted', row);
    } else log(ctx, path, tag, 'C', 'profile', 'kept', row); // times and the UTC offset stay with whole-day shifts
    return;
  }
  if (e.items) {
    processItems(e, ctx, path, 'clean');
    log(ctx, path, tag, 'C', 'profile', 'cleaned', row);
  } else if (TEXT_VRS.has(e.vr) || e.vr === 'CS') {
    const before = ds.string(tag);
    ds.set(e.vr === 'PN' ? dummyElement(ds, e, ctx) : cleanedElement(ds, e, ctx));
    log(ctx, path, tag, 'C', 'profile', ds.string(tag) === before ? 'kept' : 'cleaned', row);
  } else {
    // bitmaps and samples (overlay, curve data) cannot be searched for text
    ds.delete(tag);
    log(ctx, path, tag, 'C', 'profile', 'removed', row);
  }
}

function applyGeneric(ds: DicomDataset, e: DicomElement, ctx: Ctx, path: string, mode: Mode): void {
  const tag = e.tag;
  if (e.items) {
    processItems(e, ctx, path, mode);
    return;
  }
  if (e.vr === 'UI') {
    if (CLASS_UIDS.has(tag) || ctx.opts.retainUIDs) return;
    const before = ds.strings(tag);
    if (before.every((u) => !u || u.startsWith('1.2.840.10008.'))) return;
    remapUids(ds, tag, ctx);
    log(ctx, path, tag, 'U', 'generic', 'remapped');
    return;
  }
  if (DATE_VRS.has(e.vr)) {
    if (KEEP_DATES.has(tag) || ctx.opts.dates === 'keep') return;
    if (ctx.opts.dates === 'shift') {
      if (e.vr === 'TM') return;
      ds.set(shifted(ds, e, ctx));
      log(ctx, path, tag, 'C', 'generic', 'shifted');
      return;
    }
    if (prefixIsTop(path)) {
      ds.delete(tag);
      log(ctx, path, tag, 'X', 'generic', 'removed');
    } else {
      ds.set(emptied(e));
      log(ctx, path, tag, 'Z', 'generic', 'empty');
    }
    return;
  }
  if (e.vr === 'PN') {
    if (mode === 'normal') {
      ds.set(emptied(e));
      log(ctx, path, tag, 'Z', 'generic', 'empty');
    } else {
      ds.set(dummyElement(ds, e, ctx));
      log(ctx, path, tag, 'D', 'generic', 'dummy');
    }
    return;
  }
  if (mode !== 'normal' && TEXT_VRS.has(e.vr) && !CODE_KEYS.has(tag)) {
    if (mode === 'dummy') {
      ds.set(dummyElement(ds, e, ctx));
      log(ctx, path, tag, 'D', 'generic', 'dummy');
    } else {
      ds.set(cleanedElement(ds, e, ctx));
      log(ctx, path, tag, 'C', 'generic', 'cleaned');
    }
  }
}

function prefixIsTop(path: string): boolean {
  return !path.includes('[');
}

/** De-identifies a dataset in place and reports what changed (see the module comment). */
export function deidentifyDatasetWithReport(ds: DicomDataset, opts: DeidentifyOptions = {}, where?: string): DeidReport {
  const warnings: string[] = [];
  if (ds.string(BURNED_IN_ANNOTATION)?.toUpperCase() === 'YES') {
    if ((opts.burnedInAnnotation ?? 'refuse') === 'refuse') throw new BurnedInAnnotationError(where);
    warnings.push('BurnedInAnnotation is YES: the pixels may still show identifying text');
  }
  // Text is rewritten in UTF-8 or Latin-1: a dataset in another set (ISO 2022, GB18030, ...) is converted to UTF-8 first.
  const transcoded = transcodeToUtf8(ds);
  if (transcoded.length) warnings.push(`text re-encoded as UTF-8 (SpecificCharacterSet ISO_IR 192) from ${transcoded.join(', ')}`);
  const options = enabledOptions(opts);
  const ctx: Ctx = {
    opts,
    state: opts.state ?? newDeidentifyState(),
    enabled: options,
    required: requirements(ds),
    identifiers: options.some(
      (o) => o === 'cleanDescriptors' || o === 'cleanStructuredContent' || o === 'cleanGraphics' || o === 'retainPatientCharacteristics',
    )
      ? identifyingPattern(ds)
      : undefined,
    changes: [],
  };
  processDataset(ds, ctx, '', 'normal');

  const dates = opts.dates ?? 'remove';
  const method = ['PS3.15 Basic Application Level Confidentiality Profile', ...options.map((o) => OPTION_CODES[o].meaning)];
  const codes = [BASIC_PROFILE_CODE, ...options.map((o) => OPTION_CODES[o])];
  const added: DicomElement[] = [
    el.str(T.PatientIdentityRemoved, 'CS', 'YES'),
    el.str(T.LongitudinalTemporalInformationModified, 'CS', dates === 'keep' ? 'UNMODIFIED' : dates === 'shift' ? 'MODIFIED' : 'REMOVED'),
    el.str(
      T.DeidentificationMethod,
      'LO',
      method.map((m) => m.slice(0, 64)),
    ),
    el.seq(
      T.DeidentificationMethodCodeSequence,
      codes.map((c) => dataset(el.str(T.CodeValue, 'SH', c.value), el.str(T.CodingSchemeDesignator, 'SH', c.scheme), el.str(T.CodeMeaning, 'LO', c.meaning))),
    ),
  ];
  for (const e of added) {
    ds.set(e);
    log(ctx, tagHex(e.tag), e.tag, 'set', 'method', 'set');
  }
  return { changes: ctx.changes, warnings, options };
}

/** De-identifies a dataset in place and returns it. */
export function deidentifyDataset(ds: DicomDataset, opts: DeidentifyOptions = {}): DicomDataset {
  deidentifyDatasetWithReport(ds, opts);
  return ds;
}

/** De-identifies Part 10 bytes: a new file (Explicit VR Little Endian, or the original encapsulated syntax) and the report. */
export function deidentifyFile(bytes: Uint8Array, opts: DeidentifyOptions = {}, path?: string): { bytes: Uint8Array; report: DeidReport } {
  const file = parseDicom(bytes, path === undefined ? {} : { path });
  const report = deidentifyDatasetWithReport(file.dataset, opts, path);
  const native = [TS.ImplicitLE, TS.ExplicitLE, TS.ExplicitBE, TS.DeflatedLE] as string[];
  return { bytes: writeDicom(file.dataset, { transferSyntaxUID: native.includes(file.transferSyntaxUID) ? TS.ExplicitLE : file.transferSyntaxUID }), report };
}

/**
 * De-identifies a dataset (in place, returned) or Part 10 bytes (a new file
 * is returned: Explicit VR Little Endian, or the original encapsulated syntax).
 */
export function deidentify(input: DicomDataset, opts?: DeidentifyOptions): DicomDataset;
export function deidentify(input: Uint8Array, opts?: DeidentifyOptions): Uint8Array;
export function deidentify(input: DicomDataset | Uint8Array, opts: DeidentifyOptions = {}): DicomDataset | Uint8Array {
  if (input instanceof DicomDataset) return deidentifyDataset(input, opts);
  return deidentifyFile(input, opts).bytes;
}
