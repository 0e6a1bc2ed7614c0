/**
 * Sends the FHIR outbox to the configured FHIR server, in the server process
 * (one per data folder): every poll, each due Bundle is claimed for one
 * attempt, POSTed, and marked sent, or tried again after a back-off that
 * doubles per attempt (from retryMs, at most MAX_BACKOFF_MS) until
 * maxAttempts, when it is given up. A refusal that will not change on its own
 * (a 4xx other than 408/429, a Bundle that is not valid R4) is given up at
 * once. Each attempt's outcome goes into the audit log.
 */
import type { AuditLog } from '../audit/log.ts';
import { jobEntry } from '../audit/job-entry.ts';
import type { JobQueue } from '../store/queue.ts';
import type { FhirOutbox, OutboxEntry } from './outbox.ts';
import { FhirBundleInvalid, FhirPostError, postFhirBundle, type FhirServer } from './post.ts';

/** The longest wait between two attempts. */
export const MAX_BACKOFF_MS = 10 * 60_000;

export interface FhirSenderOptions {
  outbox: FhirOutbox;
  server: FhirServer;
  timeoutMs: number;
  /** Wait before the second attempt; each later wait doubles. */
  retryMs: number;
  maxAttempts: number;
  pollMs: number;
  jobs: JobQueue;
  audit?: AuditLog;
  log: (msg: string) => void;
}

/** When the attempt after `attempts` failed ones is due; null when they are used up. */
export function nextAttemptAt(now: number, attempts: number, o: { retryMs: number; maxAttempts: number }): number | null {
  if (attempts >= o.maxAttempts) return null;
  return now + Math.min(MAX_BACKOFF_MS, o.retryMs * 2 ** (attempts - 1));
}

export class FhirSender {
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;

  constructor(private readonly o: FhirSenderOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Looks at the outbox now instead of at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops after the attempt in hand. */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeUp?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        for (const e of this.o.outbox.due(16)) {
          if (!this.running) break;
          await this.attempt(e);
        }
      } catch (e) {
        this.o.log(`FHIR outbox: ${(e as Error).message}`);
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.o.pollMs);
        this.wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  /** One attempt at one Bundle: claimed first, so two senders never send it at once. */
  private async attempt(e: OutboxEntry): Promise<void> {
    const { outbox, server } = this.o;
    // Held for a little longer than an attempt can take: a sender killed mid-attempt leaves it due again after that.
    if (!outbox.claim(e.jobId, this.o.timeoutMs + 5_000)) return;
    const attempts = e.attempts + 1;
    let outcome: string;
    let detail: string;
    try {
      await postFhirBundle(server, e.bundle, { timeoutMs: this.o.timeoutMs });
      outbox.markSent(e.jobId);
      outcome = 'posted';
      detail = server.url;
    } catch (err) {
      const message = (err as Error).message;
      const lasting = err instanceof FhirBundleInvalid || (err instanceof FhirPostError && !err.transient);
      const retryAt = lasting ? null : nextAttemptAt(Date.now(), attempts, this.o);
      outbox.markFailed(e.jobId, message, retryAt);
      outcome = retryAt === null ? 'abandoned' : 'failed';
      detail =
        retryAt === null
          ? `${message}; given up after ${attempts} attempt(s)`
          : `${message}; attempt ${attempts} of ${this.o.maxAttempts}, next in ${Math.round((retryAt - Date.now()) / 1000)} s`;
      this.o.log(`job ${e.jobId}: FHIR results not sent: ${detail}`);
    }
    const job = await this.o.jobs.get(e.jobId).catch(() => undefined);
    const entry = job ? jobEntry(job, 'fhir.post', outcome, { detail }) : { action: 'fhir.post', outcome, keyId: null, jobId: e.jobId, detail };
    this.o.audit?.append(entry);
  }
}
