/**
 * Coded meaning of a segment (SEG Segmented Property Category / Type / Type
 * Modifier; RTSTRUCT RT ROI Identification Code) from a label name, and the
 * JSON file users supply their own codes in.
 *
 * Default mapping (SNOMED CT, scheme SCT; every code and meaning is one of
 * DICOM's PS3.16 concepts, the categories from CID 7150 "Segmentation
 * Property Categories", the modifiers from CID 2 / 244 (anatomic modifiers,
 * laterality)): the label name is lower-cased, '_', '-' and '.' become
 * spaces, and the first
 * entry of ANATOMY whose pattern matches gives category and type. A direction
 * word in the name (anterior, posterior, left, right, superior, inferior,
 * medial, lateral, bilateral) becomes the type modifier. A name that is only
 * a direction ("Anterior", as in the MSD hippocampus task) takes its
 * structure from the context (the dataset name, e.g. "Task04_Hippocampus").
 * Anything else falls back to category Tissue and type Tissue (SCT 85756007)
 * with the label name as its meaning.
 *
 * Codes file: a JSON object whose keys are label values ("1") or label names
 * ("Posterior"), each value
 *   { "category": CODE, "type": CODE, "modifier"?: CODE, "label"?: string, "rgb"?: [r, g, b] }
 * with CODE either { "value", "scheme", "meaning" } or DICOM's keywords
 * { "CodeValue", "CodingSchemeDesignator", "CodeMeaning" }; or dcmqi's
 * segmentation meta JSON ({ "segmentAttributes": [[{ "labelID", "SegmentLabel",
 * "SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence",
 * "SegmentedPropertyTypeModifierCodeSequence", "recommendedDisplayRGBValue" }]] }).
 */
import { MedsegIoError } from '../errors.ts';
import type { Code } from './seg-read.ts';

export interface SegmentCodes {
  category: Code;
  type: Code;
  modifier?: Code;
}

/** What a codes file says about one label. */
export interface SuppliedSegment extends SegmentCodes {
  label?: string;
  rgb?: [number, number, number];
}

/** A codes file: by label value and by label name (lower case). */
export interface SegmentCodeTable {
  byValue: Map<number, SuppliedSegment>;
  byName: Map<string, SuppliedSegment>;
}

const sct = (value: string, meaning: string): Code => ({ value, scheme: 'SCT', meaning });

export const CATEGORY = {
  anatomicalStructure: sct('91723000', 'Anatomical Structure'),
  tissue: sct('85756007', 'Tissue'),
  morphologicallyAbnormal: sct('49755003', 'Morphologically Abnormal Structure'),
  bodySubstance: sct('91720002', 'Body Substance'),
} as const;

const A = CATEGORY.anatomicalStructure;
const M = CATEGORY.morphologicallyAbnormal;
const TI = CATEGORY.tissue;

/** Label-name patterns -> category and type, most specific first. */
export const ANATOMY: { pattern: RegExp; category: Code; type: Code }[] = [
  { pattern: /hippocamp/, category: A, type: sct('5366008', 'Hippocampus') },
  { pattern: /inferior vena cava|\bivc\b/, category: A, type: sct('64131007', 'Inferior Vena Cava') },
  { pattern: /portal vein/, category: A, type: sct('32764006', 'Portal Vein') },
  { pattern: /hepatic vein/, category: A, type: sct('8993003', 'Hepatic Vein') },
  { pattern: /pulmonary arter/, category: A, type: sct('81040000', 'Pulmonary artery') },
  { pattern: /tumou?r|neoplasm|cancer|carcinoma/, category: M, type: sct('108369006', 'Neoplasm') },
  { pattern: /metasta/, category: M, type: sct('14799000', 'Neoplasm, Secondary') },
  { pattern: /lesion/, category: M, type: sct('52988006', 'Lesion') },
  { pattern: /\bmass\b/, category: M, type: sct('4147007', 'Mass') },
  { pattern: /nodule/, category: M, type: sct('27925004', 'Nodule') },
  { pattern: /cyst/, category: M, type: sct('367643001', 'Cyst') },
  { pattern: /necros|necrotic/, category: M, type: sct('6574001', 'Necrosis') },
  { pattern: /o?edema/, category: M, type: sct('79654002', 'Edema') },
  { pattern: /ha?emorrhag|bleed/, category: M, type: sct('50960005', 'Hemorrhage') },
  { pattern: /thromb/, category: M, type: sct('396339007', 'Thrombus') },
  { pattern: /vessel|vascul/, category: A, type: sct('59820001', 'Blood vessel') },
  { pattern: /liver|hepatic/, category: A, type: sct('10200004', 'Liver') },
  { pattern: /spleen|splenic/, category: A, type: sct('78961009', 'Spleen') },
  { pattern: /kidney|renal/, category: A, type: sct('64033007', 'Kidney') },
  { pattern: /adrenal/, category: A, type: sct('23451007', 'Adrenal gland') },
  { pattern: /pancrea/, category: A, type: sct('15776009', 'Pancreas') },
  { pattern: /gall ?bladder/, category: A, type: sct('28231008', 'Gallbladder') },
  { pattern: /stomach/, category: A, type: sct('69695003', 'Stomach') },
  { pattern: /duoden/, category: A, type: sct('38848004', 'Duodenum') },
  { pattern: /small (bowel|intestine)/, category: A, type: sct('30315005', 'Small intestine') },
  { pattern: /colon/, category: A, type: sct('71854001', 'Colon') },
  { pattern: /rectum/, category: A, type: sct('34402009', 'Rectum') },
  { pattern: /(o)?esophag/, category: A, type: sct('32849002', 'Esophagus') },
  { pattern: /trachea/, category: A, type: sct('44567001', 'Trachea') },
  { pattern: /prostat/, category: A, type: sct('41216001', 'Prostate') },
  { pattern: /uterus/, category: A, type: sct('35039007', 'Uterus') },
  { pattern: /left ventric/, category: A, type: sct('87878005', 'Left Ventricle') },
  { pattern: /right ventric/, category: A, type: sct('53085002', 'Right ventricle') },
  { pattern: /left atri/, category: A, type: sct('82471001', 'Left atrium') },
  { pattern: /heart|cardiac/, category: A, type: sct('80891009', 'Heart') },
  { pattern: /lung|pulmonary/, category: A, type: sct('39607008', 'Lung') },
  { pattern: /aort/, category: A, type: sct('15825003', 'Aorta') },
  { pattern: /arter/, category: A, type: sct('51114001', 'Artery') },
  { pattern: /\bvein|venous/, category: A, type: sct('29092000', 'Vein') },
  { pattern: /lymph node/, category: A, type: sct('59441001', 'Lymph node') },
  { pattern: /cerebell/, category: A, type: sct('113305005', 'Cerebellum') },
  { pattern: /white matter/, category: A, type: sct('389080008', 'White Matter') },
  { pattern: /gr[ae]y matter/, category: A, type: sct('389081007', 'Gray Matter') },
  { pattern: /cerebrospinal|\bcsf\b/, category: CATEGORY.bodySubstance, type: sct('65216001', 'Cerebrospinal Fluid') },
  { pattern: /brain/, category: A, type: sct('12738006', 'Brain') },
  { pattern: /spinal cord/, category: A, type: sct('2748008', 'Spinal cord') },
  { pattern: /vertebr|spine/, category: A, type: sct('51282000', 'Vertebra') },
  { pattern: /femur/, category: A, type: sct('71341001', 'Femur') },
  { pattern: /\bribs?\b/, category: A, type: sct('113197003', 'Rib') },
  { pattern: /skull/, category: A, type: sct('89546000', 'Skull') },
  { pattern: /bone/, category: TI, type: sct('272673000', 'Bone') },
  { pattern: /muscle/, category: TI, type: sct('71616004', 'Muscle') },
  { pattern: /skin/, category: TI, type: sct('39937001', 'Skin') },
];

/** Direction words -> SNOMED CT qualifier (the Segmented Property Type Modifier). */
export const MODIFIERS: { pattern: RegExp; code: Code }[] = [
  { pattern: /\banterior\b/, code: sct('255549009', 'Anterior') },
  { pattern: /\bposterior\b/, code: sct('255551008', 'Posterior') },
  { pattern: /\bleft\b/, code: sct('7771000', 'Left') },
  { pattern: /\bright\b/, code: sct('24028007', 'Right') },
  { pattern: /\bsuperior\b/, code: sct('264217000', 'Superior') },
  { pattern: /\binferior\b/, code: sct('261089000', 'Inferior') },
  { pattern: /\bmedial\b/, code: sct('255561001', 'Medial') },
  { pattern: /\blateral\b/, code: sct('49370004', 'Lateral') },
  { pattern: /\bbilateral\b/, code: sct('51440002', 'Bilateral') },
];

function normalise(name: string): string {
  return name
    .toLowerCase()
    .replace(/[_\-.]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The fallback: Tissue, with the label name as the type's meaning (at most 64 characters, the LO limit). */
export function fallbackCodes(name: string): SegmentCodes {
  return { category: CATEGORY.tissue, type: { value: '85756007', scheme: 'SCT', meaning: name.trim().slice(0, 64) || 'Tissue' } };
}

/**
 * Default codes for a label name. `context` (a dataset or task name) supplies
 * the structure when the name is only a direction ("Anterior").
 */
export function defaultSegmentCodes(name: string, context?: string): SegmentCodes {
  const n = normalise(name);
  const modifier = MODIFIERS.find((m) => m.pattern.test(n))?.code;
  const anatomy = ANATOMY.find((a) => a.pattern.test(n));
  if (anatomy) return { category: anatomy.category, type: anatomy.type, ...(modifier ? { modifier } : {}) };
  const onlyDirection = n !== '' && n.split(' ').every((w) => MODIFIERS.some((m) => m.pattern.test(w)));
  if (modifier && onlyDirection && context) {
    const c = ANATOMY.find((a) => a.pattern.test(normalise(context)));
    if (c) return { category: c.category, type: c.type, modifier };
  }
  return fallbackCodes(name);
}

/** Codes for label `value` named `name`: the supplied table first (by value, then by name), else the default mapping. */
export function segmentCodesFor(value: number, name: string, o: { table?: SegmentCodeTable; context?: string } = {}): SuppliedSegment {
  const given = o.table?.byValue.get(value) ?? o.table?.byName.get(name.trim().toLowerCase());
  return given ?? defaultSegmentCodes(name, o.context);
}

function parseCode(v: unknown, where: string, path: string): Code {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MedsegIoError('BAD_DATA', `${where}: expected a code object`, path);
  const o = v as Record<string, unknown>;
  const value = o.value ?? o.CodeValue;
  const scheme = o.scheme ?? o.CodingSchemeDesignator;
  const meaning = o.meaning ?? o.CodeMeaning;
  for (const [k, x] of [
    ['value', value],
    ['scheme', scheme],
    ['meaning', meaning],
  ] as const) {
    if (typeof x !== 'string' || x.trim() === '') throw new MedsegIoError('BAD_DATA', `${where}: code ${k} must be a non-empty string`, path);
  }
  const code = { value: (value as string).trim(), scheme: (scheme as string).trim(), meaning: (meaning as string).trim() };
  if (code.value.length > 16) throw new MedsegIoError('BAD_DATA', `${where}: code value '${code.value}' is longer than 16 characters`, path);
  if (code.scheme.length > 16) throw new MedsegIoError('BAD_DATA', `${where}: coding scheme '${code.scheme}' is longer than 16 characters`, path);
  if (code.meaning.length > 64) throw new MedsegIoError('BAD_DATA', `${where}: code meaning is longer than 64 characters`, path);
  return code;
}

function parseRgb(v: unknown, where: string, path: string): [number, number, number] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== 3 || !v.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
    throw new MedsegIoError('BAD_DATA', `${where}: rgb must be three integers 0..255`, path);
  }
  return v as [number, number, number];
}

function parseEntry(v: unknown, where: string, path: string, dcmqi: boolean): SuppliedSegment {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MedsegIoError('BAD_DATA', `${where}: expected an object`, path);
  const o = v as Record<string, unknown>;
  const k = dcmqi
    ? {
        category: 'SegmentedPropertyCategoryCodeSequence',
        type: 'SegmentedPropertyTypeCodeSequence',
        modifier: 'SegmentedPropertyTypeModifierCodeSequence',
        label: 'SegmentLabel',
        rgb: 'recommendedDisplayRGBValue',
      }
    : { category: 'category', type: 'type', modifier: 'modifier', label: 'label', rgb: 'rgb' };
  if (o[k.label] !== undefined && typeof o[k.label] !== 'string') throw new MedsegIoError('BAD_DATA', `${where}: ${k.label} must be a string`, path);
  return {
    category: parseCode(o[k.category], `${where}.${k.category}`, path),
    type: parseCode(o[k.type], `${where}.${k.type}`, path),
    ...(o[k.modifier] !== undefined ? { modifier: parseCode(o[k.modifier], `${where}.${k.modifier}`, path) } : {}),
    ...(o[k.label] !== undefined ? { label: o[k.label] as string } : {}),
    ...(o[k.rgb] !== undefined ? { rgb: parseRgb(o[k.rgb], `${where}.${k.rgb}`, path) } : {}),
  };
}

/** Parses a codes file's JSON text (see the module comment for the two accepted layouts). */
export function parseSegmentCodes(text: string, path = 'segment codes'): SegmentCodeTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MedsegIoError('BAD_DATA', `not valid JSON: ${(e as Error).message}`, path);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new MedsegIoError('BAD_DATA', 'expected a JSON object', path);
  const table: SegmentCodeTable = { byValue: new Map(), byName: new Map() };
  const root = json as Record<string, unknown>;
  if ('segmentAttributes' in root) {
    const groups = root.segmentAttributes;
    if (!Array.isArray(groups)) throw new MedsegIoError('BAD_DATA', 'segmentAttributes must be a list of lists', path);
    groups.forEach((g, gi) => {
      if (!Array.isArray(g)) throw new MedsegIoError('BAD_DATA', `segmentAttributes[${gi}] must be a list`, path);
      g.forEach((s, si) => {
        const where = `segmentAttributes[${gi}][${si}]`;
        const id = (s as Record<string, unknown> | null)?.labelID;
        if (!Number.isInteger(id) || (id as number) < 1) throw new MedsegIoError('BAD_DATA', `${where}: labelID must be an integer >= 1`, path);
        table.byValue.set(id as number, parseEntry(s, where, path, true));
      });
    });
    return table;
  }
  for (const [key, v] of Object.entries(root)) {
    const entry = parseEntry(v, key, path, false);
    if (/^\d+$/.test(key)) table.byValue.set(Number(key), entry);
    else table.byName.set(key.trim().toLowerCase(), entry);
  }
  return table;
}
