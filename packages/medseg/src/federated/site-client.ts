/**
 * A site's side of the HTTP protocol (protocol.ts), on Node's fetch. A
 * refusal comes back as the coordinator's FederationError (same code); a
 * coordinator that cannot be reached is UNREACHABLE, which the site retries.
 */
import { FederationError, FEDERATION_ERRORS, type FederationErrorCode } from './errors.ts';
import { SITE_HEADER, type Cohort, type FederationInfo, type RoundStatus } from './protocol.ts';

export class CoordinatorClient {
  private readonly base: string;

  constructor(
    url: string,
    readonly site: string,
    private readonly key: string,
    private readonly timeoutMs = 120_000,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  private async request(method: 'GET' | 'POST', path: string, body?: Uint8Array | object): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}`, [SITE_HEADER]: this.site };
    let payload: Uint8Array | string | undefined;
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new FederationError('UNREACHABLE', `cannot reach the coordinator at ${this.base} (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
    if (res.ok) return res;
    let answer: { code?: string; message?: string } = {};
    try {
      answer = (await res.json()) as typeof answer;
    } catch {
      // not the protocol's error body
    }
    const code = answer.code && answer.code in FEDERATION_ERRORS ? (answer.code as FederationErrorCode) : res.status >= 500 ? 'UNREACHABLE' : 'BAD_REQUEST';
    throw new FederationError(code, `coordinator answered ${res.status} to ${method} ${path}: ${answer.message ?? res.statusText}`);
  }

  async info(): Promise<FederationInfo> {
    return (await (await this.request('GET', '/federation')).json()) as FederationInfo;
  }

  async status(): Promise<RoundStatus> {
    return (await (await this.request('GET', '/status')).json()) as RoundStatus;
  }

  async weights(round: number): Promise<Uint8Array> {
    return new Uint8Array(await (await this.request('GET', `/rounds/${round}/weights`)).arrayBuffer());
  }

  async submit(round: number, update: Uint8Array): Promise<{ aggregated: boolean }> {
    const r = (await (await this.request('POST', `/rounds/${round}/update`, update)).json()) as { aggregated: boolean };
    return { aggregated: r.aggregated };
  }

  async submitKey(round: number, publicKey: string, examples: number, privacy?: { epsilon: number; delta: number } | null): Promise<void> {
    await this.request('POST', `/rounds/${round}/keys`, { publicKey, examples, ...(privacy ?? {}) });
  }

  async cohort(round: number): Promise<Cohort> {
    return (await (await this.request('GET', `/rounds/${round}/cohort`)).json()) as Cohort;
  }

  async submitMasked(round: number, attempt: number, words: Uint32Array): Promise<{ aggregated: boolean }> {
    const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    const r = (await (await this.request('POST', `/rounds/${round}/masked?attempt=${attempt}`, bytes)).json()) as { aggregated: boolean };
    return { aggregated: r.aggregated };
  }
}
