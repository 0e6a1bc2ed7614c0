/**
 * The coordinator's HTTP(S) API (protocol.ts) on fastify. Site and key are
 * checked before a body is read; bodies are limited to the size an update of
 * this model can have; every refusal is a typed 4xx {statusCode, code,
 * message} and leaves the coordinator serving. A failure of the coordinator
 * itself is logged and answered with a 500 that shows no internals.
 */
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Coordinator } from './coordinator.ts';
import { FederationError } from './errors.ts';
import { SITE_HEADER } from './protocol.ts';
import { encodedSize } from './weights.ts';

declare module 'fastify' {
  interface FastifyRequest {
    site: string;
  }
}

export interface CoordinatorServerOptions {
  /** TLS key and certificate (PEM): the API is served over HTTPS. */
  https?: { key: Buffer; cert: Buffer };
  logger?: boolean;
}

function roundParam(req: FastifyRequest): number {
  const raw = (req.params as { round: string }).round;
  if (!/^\d{1,9}$/.test(raw)) throw new FederationError('BAD_REQUEST', `round must be a whole number, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

export function coordinatorServer(c: Coordinator, o: CoordinatorServerOptions = {}): FastifyInstance {
  const app = (o.https ? Fastify({ https: o.https, logger: o.logger ?? false }) : Fastify({ logger: o.logger ?? false })) as unknown as FastifyInstance;
  const bodyLimit = encodedSize(c.shared);
  app.decorateRequest('site', '');
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError | FederationError, req, reply) => {
    if (err instanceof FederationError) {
      if (err.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="medseg federation"');
      return reply.status(err.statusCode).send({ statusCode: err.statusCode, error: STATUS_CODES[err.statusCode], code: err.code, message: err.message });
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      process.stderr.write(`coordinator: ${req.method} ${req.url} failed: ${(err as Error).stack ?? String(err)}\n`);
      return reply.status(500).send({ statusCode: 500, error: STATUS_CODES[500], code: 'INTERNAL', message: 'internal error (logged by the coordinator)' });
    }
    const code = status === 413 ? 'TOO_LARGE' : status === 401 ? 'UNAUTHORIZED' : 'BAD_REQUEST';
    const message = status === 413 ? `the body is larger than an update of this model can be (${bodyLimit} bytes)` : err.message;
    return reply.status(status).send({ statusCode: status, error: STATUS_CODES[status], code, message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ statusCode: 404, error: 'Not Found', code: 'NO_ROUTE', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
  app.addHook('onRequest', async (req) => {
    const auth = req.headers.authorization;
    const key = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const site = req.headers[SITE_HEADER];
    req.site = c.authenticate(typeof site === 'string' ? site : undefined, key);
  });

  app.get('/federation', async (req) => c.info(req.site));
  app.get('/status', async (req) => c.status(req.site));
  app.get('/rounds/:round/weights', async (req, reply) => {
    const bytes = c.weightsBytes(roundParam(req));
    return reply.type('application/octet-stream').send(bytes);
  });
  const body = (req: FastifyRequest): Buffer => {
    if (!Buffer.isBuffer(req.body)) throw new FederationError('BAD_REQUEST', 'send the update as application/octet-stream');
    return req.body;
  };
  app.post('/rounds/:round/update', async (req) => ({ accepted: true, ...c.submit(req.site, roundParam(req), body(req)) }));
  app.post('/rounds/:round/keys', { bodyLimit: 4096 }, async (req) => {
    const b = req.body as { publicKey?: unknown; examples?: unknown; epsilon?: unknown; delta?: unknown } | null;
    if (!b || typeof b !== 'object') throw new FederationError('BAD_REQUEST', 'send {"publicKey": "<base64>", "examples": <cases>} as JSON');
    const privacy = b.epsilon === undefined ? null : { epsilon: b.epsilon as number, delta: b.delta as number };
    c.submitKey(req.site, roundParam(req), b.publicKey as string, b.examples as number, privacy);
    return { accepted: true };
  });
  app.get('/rounds/:round/cohort', async (req) => c.cohort(req.site, roundParam(req)));
  app.post('/rounds/:round/masked', async (req) => {
    const attempt = Number((req.query as { attempt?: string }).attempt);
    if (!Number.isInteger(attempt)) throw new FederationError('BAD_REQUEST', 'name the cohort attempt: ?attempt=<n>');
    return { accepted: true, ...c.submitMasked(req.site, roundParam(req), attempt, body(req)) };
  });
  return app;
}
