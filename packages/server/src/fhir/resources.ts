/**
 * A job's result as HL7 FHIR R4 resources, in one transaction Bundle: an
 * Observation per foreground label with its volume in mL (voxel count x
 * voxel volume), and a DiagnosticReport that lists them, names the
 * ImagingStudy of the source study (by its Study Instance UID) and carries
 * the DICOM SEG (by its SOP Instance UID, and where it can be fetched).
 * Status is preliminary: an algorithm's result, not yet read by a person.
 * With DICOM input the resources name the patient as their subject: a
 * Patient created only if none has that identifier (the DICOM Patient ID in
 * the hospital's identifier system). Every create is conditional on the
 * job's identifiers, so a Bundle sent again after an unanswered attempt
 * creates nothing twice.
 */
import { randomUUID } from 'node:crypto';
import type { Volume } from '@medseg/medseg/io/volume';

export interface FhirJobFacts {
  jobId: string;
  model: string;
  modelVersion: string;
  /** Label names by value (the plan's), background (0) included or not. */
  labels: Record<string, string>;
  /** The source study and the SEG made of it, for DICOM input. */
  studyInstanceUid?: string;
  segSopInstanceUid?: string;
  /** Where the SEG (or, for other input, the label map) can be fetched. */
  resultUrl?: string;
  resultContentType?: string;
  /** ISO time the result was made. */
  issued: string;
  /** The patient of DICOM input: Patient ID, the identifier system it belongs to, the DICOM Patient's Name. */
  patient?: { id: string; system: string; name?: string };
}

type Resource = Record<string, unknown> & { resourceType: string };

/** Voxels per label value in a label map. */
export function labelCounts(labels: Volume): Map<number, number> {
  const counts = new Map<number, number>();
  const d = labels.data as ArrayLike<number>;
  for (let i = 0; i < d.length; i++) counts.set(d[i]!, (counts.get(d[i]!) ?? 0) + 1);
  return counts;
}

/** mL of each foreground label of the plan (0 for labels absent from the map). */
export function labelVolumesMl(labels: Volume, names: Record<string, string>): { value: number; name: string; ml: number }[] {
  const counts = labelCounts(labels);
  const voxelMl = (labels.spacing[0] * labels.spacing[1] * labels.spacing[2]) / 1000;
  return Object.entries(names)
    .map(([k, name]) => ({ value: Number(k), name }))
    .filter((l) => l.value > 0)
    .sort((a, b) => a.value - b.value)
    .map((l) => ({ ...l, ml: (counts.get(l.value) ?? 0) * voxelMl }));
}

/** The identifier system of DICOM Patient IDs unless the configuration names the hospital's (fhir.patientIdSystem). */
export const DEFAULT_PATIENT_ID_SYSTEM = 'urn:medseg:dicom-patient-id';
/** The identifier system of the pseudonyms de-identified output carries (deid/outgoing.ts). */
export const PSEUDONYM_SYSTEM = 'urn:medseg:pseudonym';

const MEDSEG_LABELS = 'urn:medseg:label';
const MEDSEG_JOB = 'urn:medseg:job';

/**
 * A DICOM Person Name (PS3.5 6.2: family^given^middle^prefix^suffix, its
 * alphabetic group before any '=') as a FHIR HumanName; undefined when empty.
 */
export function humanName(pn: string): Record<string, unknown> | undefined {
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = (pn.split('=')[0] ?? '').split('^').map((p) => p.trim());
  const givens = [given, middle].filter((g) => g !== '');
  const name: Record<string, unknown> = {
    ...(family ? { family } : {}),
    ...(givens.length ? { given: givens } : {}),
    ...(prefix ? { prefix: [prefix] } : {}),
    ...(suffix ? { suffix: [suffix] } : {}),
  };
  if (!Object.keys(name).length) return undefined;
  return { text: [prefix, ...givens, family, suffix].filter((p) => p !== '').join(' '), ...name };
}

/** The search that finds a resource by one identifier (for conditional create). */
const byIdentifier = (system: string, value: string) => `identifier=${encodeURIComponent(system)}|${encodeURIComponent(value)}`;
const dicomUid = (uid: string) => ({ system: 'urn:dicom:uid', value: `urn:oid:${uid}` });

/** The transaction Bundle of a job's result. */
export function fhirResultBundle(labels: Volume, f: FhirJobFacts): Resource {
  const method = { text: `medseg ${f.model} ${f.modelVersion}` };
  const study = f.studyInstanceUid ? { type: 'ImagingStudy', identifier: dicomUid(f.studyInstanceUid) } : undefined;
  const name = f.patient?.name ? humanName(f.patient.name) : undefined;
  const patient = f.patient
    ? {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: {
          resourceType: 'Patient',
          identifier: [{ system: f.patient.system, value: f.patient.id }],
          ...(name ? { name: [name] } : {}),
        } as Resource,
        request: { method: 'POST', url: 'Patient', ifNoneExist: byIdentifier(f.patient.system, f.patient.id) },
      }
    : undefined;
  const subject = patient ? { subject: { reference: patient.fullUrl, type: 'Patient' } } : {};
  const observations = labelVolumesMl(labels, f.labels).map((l) => ({
    fullUrl: `urn:uuid:${randomUUID()}`,
    resource: {
      resourceType: 'Observation',
      identifier: [{ system: MEDSEG_JOB, value: `${f.jobId}/label/${l.value}` }],
      status: 'preliminary',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging', display: 'Imaging' }] }],
      code: { coding: [{ system: MEDSEG_LABELS, code: String(l.value), display: l.name }], text: `Volume of ${l.name}` },
      ...subject,
      issued: f.issued,
      method,
      valueQuantity: { value: Number(l.ml.toFixed(4)), unit: 'mL', system: 'http://unitsofmeasure.org', code: 'mL' },
      ...(study ? { derivedFrom: [{ type: study.type, identifier: study.identifier }] } : {}),
    } as Resource,
    request: { method: 'POST', url: 'Observation', ifNoneExist: byIdentifier(MEDSEG_JOB, `${f.jobId}/label/${l.value}`) },
  }));
  const report: Resource = {
    resourceType: 'DiagnosticReport',
    identifier: [{ system: MEDSEG_JOB, value: f.jobId }],
    status: 'preliminary',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD', display: 'Radiology' }] }],
    code: { text: `Automatic segmentation (medseg ${f.model})` },
    ...subject,
    issued: f.issued,
    result: observations.map((o) => ({ reference: o.fullUrl, type: 'Observation' })),
    ...(study ? { imagingStudy: [{ type: study.type, identifier: study.identifier }] } : {}),
    conclusion: observations
      .map((o) => `${(o.resource.code as { text: string }).text}: ${(o.resource.valueQuantity as { value: number }).value} mL`)
      .join('; '),
    ...(f.resultUrl || f.segSopInstanceUid
      ? {
          presentedForm: [
            {
              contentType: f.resultContentType ?? 'application/dicom',
              ...(f.resultUrl ? { url: f.resultUrl } : {}),
              title: f.segSopInstanceUid ? `DICOM SEG ${f.segSopInstanceUid}` : 'label map',
            },
          ],
        }
      : {}),
  };
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      ...(patient ? [patient] : []),
      ...observations,
      {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: report,
        request: { method: 'POST', url: 'DiagnosticReport', ifNoneExist: byIdentifier(MEDSEG_JOB, f.jobId) },
      },
    ],
  };
}
