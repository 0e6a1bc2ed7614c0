/**
 * Autorouting: each rule's PACS is searched (QIDO-RS, series level) every
 * pollMs, and a new image series that matches the rule (modality, series
 * description) becomes a DICOMweb job of the rule's model, as if it had
 * been submitted. A series is taken once it shows the same number of
 * instances in two searches in a row (it is not still arriving). What a
 * rule has seen is kept in the database, so a restart neither repeats nor
 * misses a series; on a rule's first search, the series already there are
 * only recorded, not segmented (pointing the service at a full archive
 * does not queue the archive). Series without images of their own (SEG,
 * SR, ...; the service's own results among them) are never taken.
 */
import { randomBytes } from 'node:crypto';
import type { AutorouteRule, DicomwebServer } from '../config.ts';
import type { ModelCatalog } from '../models/catalog.ts';
import { deidentifyWanted, refWantsDeidentify, withDeidentify } from '../deid/job-deid.ts';
import type { Job } from '../store/jobs.ts';
import type { JobQueue } from '../store/queue.ts';
import { DicomwebClient, jsonValue } from './client.ts';
import { normaliseUrl, pickServer, type DicomwebRef } from './reference.ts';
import type { AuditLog } from '../audit/log.ts';
import { jobEntry } from '../audit/job-entry.ts';
import { changeJob } from '../audit/queue-change.ts';

/** The key id recorded on jobs that autorouting makes. */
export const AUTOROUTE_KEY = 'autoroute';

const NO_IMAGES = new Set(['SEG', 'SR', 'RTSTRUCT', 'RTPLAN', 'RTDOSE', 'PR', 'KO', 'REG', 'RWV', 'DOC', 'OT-SEG']);
/** A rule's first search is recorded under this series UID. */
const BASELINE = '';

export interface AutorouteOptions {
  rules: AutorouteRule[];
  servers: DicomwebServer[];
  timeoutMs: number;
  pollMs: number;
  /** The queue also keeps what each rule has seen (so servers sharing a PostgreSQL queue share it too). */
  jobs: JobQueue;
  catalog: ModelCatalog;
  onSubmitted?: (job: Job) => void;
  log: (msg: string) => void;
  /** The audit log: each job autorouting submits is recorded with it. */
  audit?: AuditLog;
  /** Models whose DICOM always goes out de-identified ('*': every model; the service's deidentifyModels). */
  deidentifyModels?: string[];
}

export class Autorouter {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<unknown> | undefined;
  private stopped = false;
  /** Instance counts seen at the last search, by rule and series. */
  private readonly lastCount = new Map<string, number | undefined>();

  constructor(private readonly o: AutorouteOptions) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.inFlight = this.pollOnce()
        .catch((e: unknown) => this.o.log(`autorouting: ${(e as Error).message}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.o.pollMs).unref();
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }

  /** Searches every rule's PACS once; the jobs made. A PACS that fails is logged and its rules wait for the next search. */
  async pollOnce(): Promise<Job[]> {
    const made: Job[] = [];
    for (const rule of this.o.rules) {
      try {
        made.push(...(await this.pollRule(rule)));
      } catch (e) {
        this.o.log(`autorouting rule ${JSON.stringify(rule)}: ${(e as Error).message}`);
      }
    }
    return made;
  }

  private async pollRule(rule: AutorouteRule): Promise<Job[]> {
    const key = JSON.stringify([rule.model, rule.url ?? null, rule.modality ?? null, rule.seriesDescription ?? null]);
    const server = pickServer(this.o.servers, rule.url);
    const client = new DicomwebClient({ url: server.url, headers: server.headers, timeoutMs: this.o.timeoutMs, maxBytes: 64 * 1024 ** 2 });
    const query: Record<string, string> = { includefield: '0020000D,0008103E,00201209' };
    if (rule.modality) query.Modality = rule.modality;
    const found = await client.searchAllSeries(query);
    const description = rule.seriesDescription === undefined ? undefined : new RegExp(rule.seriesDescription, 'i');
    if (!(await this.o.jobs.routeSeen(key, BASELINE))) {
      // First search of this rule: what is there now is recorded, not segmented.
      const uids = found.map((s) => jsonValue(s, '0020000E')).filter((u): u is string => typeof u === 'string');
      await this.o.jobs.routeRecord(key, [BASELINE, ...uids]);
      return [];
    }
    const made: Job[] = [];
    for (const s of found) {
      const series = jsonValue(s, '0020000E');
      const study = jsonValue(s, '0020000D');
      const modality = String(jsonValue(s, '00080060') ?? '');
      if (typeof series !== 'string' || typeof study !== 'string' || NO_IMAGES.has(modality.toUpperCase())) continue;
      if (rule.modality && modality !== rule.modality) continue;
      if (description && !description.test(String(jsonValue(s, '0008103E') ?? ''))) continue;
      if (await this.o.jobs.routeSeen(key, series)) continue;
      // Taken when two searches in a row count the same instances.
      const count = jsonValue(s, '00201209') as number | undefined;
      const countKey = `${key}\n${series}`;
      const known = this.lastCount.has(countKey);
      const before = this.lastCount.get(countKey);
      this.lastCount.set(countKey, count);
      if (!known || before !== count) continue;
      this.lastCount.delete(countKey);
      const info = this.o.catalog.info(rule.model);
      const ref: DicomwebRef = { url: normaliseUrl(server.url), studyInstanceUid: study, seriesInstanceUid: series };
      const id = randomBytes(16).toString('hex');
      const newJob = {
        id,
        model: rule.model,
        modelVersion: info.version,
        inputPath: '',
        inputFormat: 'dicomweb',
        keyId: AUTOROUTE_KEY,
        inputRef: deidentifyWanted(rule.model, undefined, this.o.deidentifyModels ?? []) ? withDeidentify(JSON.stringify(ref)) : JSON.stringify(ref),
      };
      const job = await changeJob(this.o.jobs, this.o.audit, 'submitRouted', [key, series, newJob], (j) =>
        j
          ? jobEntry(j, 'job.submit', 'accepted', {
              weightsSha256: info.weightsSha256,
              detail: refWantsDeidentify(j) ? 'autoroute, de-identified output' : 'autoroute',
            })
          : null,
      );
      if (!job) continue; // another server sharing the queue took it first
      made.push(job);
      this.o.onSubmitted?.(job);
    }
    return made;
  }
}
