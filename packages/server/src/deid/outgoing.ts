/**
 * De-identification of a DICOM object the service hands out (a SEG stored to
 * the PACS or downloaded): the library's PS3.15 Basic Profile
 * (io/dicom/deidentify.ts) with UIDs derived from the service's secret, so
 * the study, series, frame of reference and instances it references get the
 * same new UIDs as the source de-identified with that secret; the patient's
 * pseudonym is derived from the original Patient ID and the secret, the same
 * for every job of that patient.
 */
import { createHmac } from 'node:crypto';
import { deidentify } from '@medseg/medseg/io/dicom/deidentify';
import { parseDicom } from '@medseg/medseg/io/dicom/parse';
import { T } from '@medseg/medseg/io/dicom/dictionary';

export interface OutgoingDicom {
  bytes: Uint8Array;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
}

/** The pseudonym of a Patient ID under a secret. */
export function patientPseudonym(patientId: string, secret: string): string {
  return `ANON-${createHmac('sha256', secret).update(`patient ${patientId}`).digest('hex').slice(0, 16).toUpperCase()}`;
}

export function deidentifyOutgoing(bytes: Uint8Array, secret: string): OutgoingDicom {
  const before = parseDicom(bytes).dataset;
  const patientId = before.string(T.PatientID) ?? '';
  const out = deidentify(bytes, { uidSecret: secret, patientId: patientPseudonym(patientId, secret) });
  const ds = parseDicom(out).dataset;
  return {
    bytes: out,
    sopInstanceUid: ds.string(T.SOPInstanceUID)!,
    seriesInstanceUid: ds.string(T.SeriesInstanceUID)!,
    studyInstanceUid: ds.string(T.StudyInstanceUID)!,
  };
}
