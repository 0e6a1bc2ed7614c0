/**
 * `medseg-serve`: starts the service with safe defaults (loopback, a data
 * folder, worker processes) and prints, on a first start, the admin key,
 * once. Settings come from flags, MEDSEG_SERVE_* variables or a JSON config
 * file (see config.ts). `medseg-serve worker` runs a worker host instead (no
 * API: workers on the server's PostgreSQL queue and shared folder, see
 * worker-host.ts); `medseg-serve audit verify <data>` checks the audit log
 * (audit/verify-command.ts). SIGINT/SIGTERM stop it: the API closes, each worker
 * finishes the job in hand. Exit codes: 0 stopped, 2 bad setting or busy data
 * folder, 64 usage, 1 bug.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.ts';

const USAGE = `usage: medseg-serve [--data DIR] [--shared DIR] [--models DIR] [--host HOST] [--port N] [--workers N] [--tls-key PEM --tls-cert PEM] [--config FILE] [--json]

  --data DIR      data folder: database, uploads, results (default ./medseg-data); local to this machine
  --shared DIR    uploads, results and the de-identification secret in this folder instead, mounted by every
                  host of a multi-host deployment (with MEDSEG_DATABASE_URL)
  --models DIR    model folders, one per model, named by its id (default DATA/models)
  --host HOST     address to listen on (default 127.0.0.1: this machine only)
  --port N        port (default 8420; 0 picks a free one)
  --workers N     worker processes (default: half the cores, at least 1)
  --tls-key PEM   private key: serve HTTPS (needed to listen beyond loopback)
  --tls-cert PEM  its certificate (chain)
  --config FILE   JSON settings (default DATA/config.json when present)
  --json          print the start-up facts as one JSON line

Environment: MEDSEG_SERVE_DATA, _MODELS, _HOST, _PORT, _WORKERS, _MAX_UPLOAD_BYTES, _LOG_LEVEL, _DICOMWEB_URL, _TLS_KEY, _TLS_CERT;
MEDSEG_DATABASE_URL=postgres://... puts the job queue on PostgreSQL.
Keys: the first start prints an admin key once; make others with POST /keys.

       medseg-serve worker --shared DIR [--data DIR] [--models DIR] [--workers N] [--config FILE] [--json]
                  a worker host: workers on the server's PostgreSQL queue (MEDSEG_DATABASE_URL) and shared folder, no API
       medseg-serve audit verify <data-folder>   checks the audit log's hash chain (see --help there)`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new ConfigError(`--${name} takes a whole number (got ${JSON.stringify(v)})`);
  return Number(v);
}

/** Resolves on SIGINT or SIGTERM. */
function stopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

async function main(): Promise<number> {
  if (process.argv[2] === 'audit') {
    // Loaded alone: checking the log needs neither the engine nor the HTTP stack.
    const { auditCommand } = await import('./audit/verify-command.ts');
    return auditCommand(
      process.argv.slice(3),
      (s) => process.stdout.write(s),
      (s) => process.stderr.write(s),
    );
  }
  const workerHost = process.argv[2] === 'worker';
  let args;
  try {
    args = parseArgs({
      args: process.argv.slice(workerHost ? 3 : 2),
      options: {
        data: { type: 'string' },
        shared: { type: 'string' },
        models: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        workers: { type: 'string' },
        config: { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-cert': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (workerHost && (args.host || args.port || args['tls-key'] || args['tls-cert'])) {
    process.stderr.write(`a worker host serves no API: --host, --port and TLS are the server's\n${USAGE}\n`);
    return 64;
  }
  const { DataFolderBusy, startService } = await import('./service.ts');
  try {
    const config = loadConfig({
      dataDir: args.data,
      sharedDir: args.shared,
      modelsDir: args.models,
      host: args.host,
      port: int('port', args.port),
      workers: int('workers', args.workers),
      config: args.config,
      tlsKey: args['tls-key'],
      tlsCert: args['tls-cert'],
    });
    if (workerHost) {
      const { startWorkerHost } = await import('./worker-host.ts');
      const host = await startWorkerHost(config);
      if (args.json) {
        process.stdout.write(
          `${JSON.stringify({ worker: true, pid: process.pid, dataDir: config.dataDir, sharedDir: config.sharedDir, recovered: host.recovered })}\n`,
        );
      } else {
        process.stdout.write(`medseg worker host (data: ${config.dataDir}, shared: ${config.sharedDir}, ${config.workers} worker(s))\n`);
      }
      await stopped();
      await host.close();
      return 0;
    }
    const svc = await startService(config);
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({ url: svc.url, adminKey: svc.adminKey ?? null, pid: process.pid, dataDir: config.dataDir, recovered: svc.recovered })}\n`,
      );
    } else {
      process.stdout.write(`medseg server at ${svc.url} (data: ${config.dataDir}, models: ${config.modelsDir}, ${config.workers} worker(s))\n`);
      if (svc.recovered.requeued || svc.recovered.removedFiles) {
        process.stdout.write(
          `recovered from an unclean stop: ${svc.recovered.requeued} job(s) requeued, ${svc.recovered.removedFiles} partial file(s) removed\n`,
        );
      }
      if (svc.adminKey) process.stdout.write(`admin key (shown this once; keep it safe): ${svc.adminKey}\n`);
    }
    await stopped();
    await svc.close();
    return 0;
  } catch (e) {
    if (
      e instanceof ConfigError ||
      e instanceof DataFolderBusy ||
      (e as NodeJS.ErrnoException).code === 'EADDRINUSE' ||
      (e as NodeJS.ErrnoException).code === 'EACCES'
    ) {
      process.stderr.write(`medseg-serve: ${(e as Error).message}\n`);
      return 2;
    }
    process.stderr.write(`medseg-serve: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

process.exitCode = await main();
