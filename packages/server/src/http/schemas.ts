/**
 * JSON schemas of the API: requests are validated against them, responses
 * serialised through them, and the OpenAPI description is made from them.
 */
import { JOB_EXPLAIN_METHODS, JOB_MAPS } from '../job-extras.ts';

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['statusCode', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string', description: 'the HTTP status text' },
    code: { type: 'string', description: 'a machine-readable reason' },
    message: { type: 'string', description: 'what was wrong and what to do' },
  },
} as const;

export const jobSchema = {
  $id: 'Job',
  type: 'object',
  required: ['id', 'model', 'modelVersion', 'state', 'progress', 'attempt', 'inputFormat', 'createdAt'],
  properties: {
    id: { type: 'string' },
    model: { type: 'string' },
    modelVersion: { type: 'string', description: 'first 12 hex digits of the SHA-256 of the plan and weights' },
    state: { type: 'string', enum: ['queued', 'running', 'done', 'failed', 'cancelled'] },
    progress: { type: 'number', minimum: 0, maximum: 1 },
    attempt: { type: 'integer', description: 'how many times a worker has taken the job' },
    inputFormat: { type: 'string', enum: ['nifti', 'nifti-gz', 'nrrd', 'png', 'dicom-zip', 'dicomweb'] },
    error: { type: ['string', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    resultUrl: { type: ['string', 'null'] },
    dicomweb: {
      type: ['object', 'null'],
      description: 'for a series from the PACS: the series, and once done the DICOM SEG stored back to the PACS',
      properties: {
        url: { type: 'string' },
        studyInstanceUid: { type: 'string' },
        seriesInstanceUid: { type: 'string' },
        segSeriesInstanceUid: { type: ['string', 'null'] },
        segSopInstanceUid: { type: ['string', 'null'] },
      },
    },
    extras: {
      type: 'object',
      description: 'what the submission asked for beyond the label map',
      properties: { uncertainty: { type: 'boolean' }, explain: { type: ['string', 'null'], enum: [...JOB_EXPLAIN_METHODS, null] } },
    },
    uncertainty: {
      type: ['object', 'null'],
      description: "once done, with uncertainty: the case's triage score and whether it reaches the model's review threshold",
      properties: {
        score: { type: 'number' },
        flagged: { type: ['boolean', 'null'] },
        threshold: { type: ['number', 'null'] },
        members: { type: 'integer' },
        sources: { type: 'array', items: { type: 'string' } },
        temperature: { type: 'number' },
        note: { type: 'string' },
      },
    },
    explanation: {
      type: ['object', 'null'],
      description: 'once done, with explain: the method, the class and layer explained, and the share of positive heat inside the predicted mask',
      properties: {
        method: { type: 'string' },
        classIndex: { type: 'integer' },
        layer: { type: ['string', 'null'] },
        massInRegion: { type: 'number' },
      },
    },
    maps: {
      type: 'object',
      description: 'URLs of the maps the job has (GET /jobs/:id/maps/:name)',
      additionalProperties: { type: 'string' },
    },
  },
} as const;

export const modelSchema = {
  $id: 'Model',
  type: 'object',
  required: ['id', 'dataset', 'dims', 'architecture', 'channels', 'labels', 'folds', 'version', 'weightsSha256', 'card'],
  properties: {
    id: { type: 'string' },
    dataset: { type: 'string' },
    dims: { type: 'string' },
    architecture: { type: 'string' },
    channels: { type: 'array', items: { type: 'string' } },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    folds: { type: 'array', items: { type: 'integer' } },
    version: { type: 'string' },
    weightsSha256: { type: 'string' },
    card: { type: ['object', 'null'], additionalProperties: true },
  },
} as const;

export const keySchema = {
  $id: 'ApiKey',
  type: 'object',
  required: ['id', 'name', 'scopes', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: ['submit', 'read', 'admin'] } },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: ['string', 'null'], format: 'date-time' },
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

export const jobIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
  additionalProperties: false,
} as const;

export const jobMapParams = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' }, name: { type: 'string', enum: [...JOB_MAPS] } },
  additionalProperties: false,
} as const;

export const keyIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
  additionalProperties: false,
} as const;

export const newKeyBody = {
  type: 'object',
  required: ['name', 'scopes'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: ['submit', 'read', 'admin'] } },
    expiresInSeconds: { type: 'integer', minimum: 1, maximum: 10 * 365 * 24 * 3600 },
  },
} as const;

export const submitBody = {
  type: 'object',
  required: ['model', 'file'],
  properties: {
    model: { type: 'string', description: 'a model id from GET /models' },
    file: {
      type: 'string',
      format: 'binary',
      description:
        'the case: NIfTI (.nii, .nii.gz), NRRD with attached data, PNG, or a zip of a DICOM series (the result is then a DICOM SEG); told by its bytes',
    },
    series: { type: 'string', description: 'for a zip holding several DICOM series: the SeriesInstanceUID of the one to segment' },
    deidentify: { type: 'string', enum: ['true', 'false'], description: 'true: the DICOM SEG result is de-identified (some models always are)' },
    uncertainty: {
      type: 'string',
      enum: ['true', 'false'],
      description: "true: also the uncertainty maps and the case's review flag (the TTA passes as members)",
    },
    explain: {
      type: 'string',
      enum: [...JOB_EXPLAIN_METHODS, 'none'],
      description: 'also a heat map of where the model looked for the first foreground class',
    },
  },
} as const;

export const dicomwebSubmitBody = {
  type: 'object',
  required: ['model', 'dicomweb'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', description: 'a model id from GET /models' },
    deidentify: { type: 'boolean', description: 'true: the DICOM SEG stored back and downloaded is de-identified (some models always are)' },
    uncertainty: { type: 'boolean', description: "true: also the uncertainty maps and the case's review flag" },
    explain: { type: 'string', enum: [...JOB_EXPLAIN_METHODS, 'none'], description: 'also a heat map of where the model looked' },
    dicomweb: {
      type: 'object',
      required: ['studyInstanceUid', 'seriesInstanceUid'],
      additionalProperties: false,
      description: 'a series on a PACS this server is configured with; the DICOM SEG of the result is stored back to it (STOW-RS)',
      properties: {
        url: { type: 'string', description: "one of the server's configured DICOMweb URLs (default: the first)" },
        studyInstanceUid: { type: 'string', pattern: '^[0-9.]{1,64}$' },
        seriesInstanceUid: { type: 'string', pattern: '^[0-9.]{1,64}$' },
      },
    },
  },
} as const;

export const errorResponses = {
  400: { $ref: 'Error#' },
  401: { $ref: 'Error#' },
  403: { $ref: 'Error#' },
  404: { $ref: 'Error#' },
  409: { $ref: 'Error#' },
  413: { $ref: 'Error#' },
  415: { $ref: 'Error#' },
  429: { $ref: 'Error#' },
  500: { $ref: 'Error#' },
} as const;
