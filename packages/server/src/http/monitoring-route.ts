/**
 * GET /models/:id/monitoring: the model's recent cases, each input's
 * fingerprint and uncertainty with its drift flags against the model's
 * reference (its training fingerprint and validation uncertainty), and the
 * sliding window's summary. A key sees the cases of its own jobs; admin sees
 * all.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allows } from '../store/keys.ts';
import { ModelFolderError, type ModelCatalog } from '../models/catalog.ts';
import type { MonitoringSettings } from '../config.ts';
import type { MonitoringStore } from '../monitoring/store.ts';
import { monitoringReference } from '../monitoring/reference.ts';
import { caseFlags, windowSummary } from '../monitoring/drift.ts';
import { errorResponses } from './schemas.ts';

/** A refused monitoring query: answered with its status, code and message by the app's error handler. */
class MonitoringQueryError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const open = { type: 'object', additionalProperties: true } as const;

export function registerMonitoringRoute(app: FastifyInstance, o: { catalog: ModelCatalog; monitoring: MonitoringStore; settings: MonitoringSettings }): void {
  app.get(
    '/models/:id/monitoring',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          "drift monitoring: each recent input's fingerprint and uncertainty against the training fingerprint and validation, per case and over a sliding window",
        params: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: { id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: 'cases listed (1-9999, default 20)' },
            window: { type: 'string', pattern: '^[1-9][0-9]{0,3}$', description: 'cases in the sliding window (default: the server setting)' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['model', 'version', 'reference', 'cases', 'window'],
            properties: {
              model: { type: 'string' },
              version: { type: 'string' },
              reference: open,
              cases: { type: 'array', items: open },
              window: open,
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req: FastifyRequest) => {
      const id = (req.params as { id: string }).id;
      const q = req.query as { limit?: string; window?: string };
      let info;
      try {
        info = o.catalog.info(id);
      } catch (e) {
        if (e instanceof ModelFolderError) throw new MonitoringQueryError(404, 'UNKNOWN_MODEL', `${e.message}: name one of GET /models`);
        throw e;
      }
      const limit = q.limit ? Number(q.limit) : 20;
      const size = q.window ? Number(q.window) : o.settings.window;
      const ref = monitoringReference(o.catalog.folder(id)!);
      const key = req.apiKey!;
      const recent = o.monitoring.recent(id, Math.max(limit, size), allows(key, 'admin') ? undefined : key.id);
      const judged = recent.map((c) => ({ ...c, flags: caseFlags(c.input, ref) }));
      return {
        model: id,
        version: info.version,
        reference: ref,
        cases: judged.slice(0, limit).map((c) => ({
          jobId: c.jobId,
          at: new Date(c.at).toISOString(),
          modelVersion: c.modelVersion,
          input: c.input,
          flags: c.flags,
          drift: c.flags.length > 0,
        })),
        window: windowSummary(judged, ref, { size, expectedRate: o.settings.expectedFlagRate, alpha: o.settings.alpha }),
      };
    },
  );
}
