/**
 * @medseg/server: the medseg service as a library (medseg-serve is its
 * command): start it, or build its API on stores of your own (the job
 * queue on SQLite or PostgreSQL).
 */
export { startService, removeOrphanFiles, DataFolderBusy, type Service } from './service.ts';
export { loadConfig, defaultConfig, checkConfig, ConfigError, type ServiceConfig, type DicomwebServer, type AutorouteRule } from './config.ts';
export { buildApp, HttpError, type AppOptions } from './http/app.ts';
export { openDatabase, type Db } from './store/db.ts';
export { JobStore, JOB_STATES, type Job, type JobState, type Lease, type NewJob } from './store/jobs.ts';
export { openJobQueue, SqliteJobQueue, type JobQueue, type Claim, type QueueLocation, type QueueOptions } from './store/queue.ts';
export { PgJobQueue } from './store/pg-jobs.ts';
export { KeyStore, SCOPES, allows, type ApiKey, type Scope } from './store/keys.ts';
export { ModelCatalog, ModelFolderError, MODEL_ID, type ModelInfo } from './models/catalog.ts';
export { WorkerPool, type PoolOptions } from './worker/pool.ts';
export { sniffUpload, UPLOAD_FORMATS, type UploadFormat } from './upload/sniff.ts';
export { DicomwebClient, jsonValue, type DicomJson, type DicomwebClientOptions, type StoredInstance } from './dicomweb/client.ts';
export {
  PacsError,
  PacsUnreachableError,
  PacsStatusError,
  PacsMalformedError,
  PacsTooLargeError,
  PacsNotFoundError,
  PacsStoreError,
} from './dicomweb/errors.ts';
export { Autorouter, type AutorouteOptions } from './dicomweb/autoroute.ts';
