/**
 * What a job's input is (an upload format, or a series on a PACS) and what
 * its result file is in consequence: the label map in the upload's own
 * format, or for DICOM input (a zip of a series, a series on a PACS) a DICOM
 * SEG (which for a PACS series also went back to the PACS).
 */
import { FORMAT_ENDING, UPLOAD_FORMATS, type UploadFormat } from './upload/sniff.ts';

export const JOB_INPUT_FORMATS = [...UPLOAD_FORMATS, 'dicomweb'] as const;
export type JobInputFormat = (typeof JOB_INPUT_FORMATS)[number];

/** The result file's ending and media type for each kind of input. */
export const RESULT_FILE: Record<JobInputFormat, { ending: string; type: string }> = {
  ...(Object.fromEntries(
    UPLOAD_FORMATS.map((f) => [
      f,
      { ending: FORMAT_ENDING[f], type: f === 'nifti-gz' ? 'application/gzip' : f === 'png' ? 'image/png' : 'application/octet-stream' },
    ]),
  ) as Record<UploadFormat, { ending: string; type: string }>),
  'dicom-zip': { ending: '.seg.dcm', type: 'application/dicom' },
  dicomweb: { ending: '.seg.dcm', type: 'application/dicom' },
};
