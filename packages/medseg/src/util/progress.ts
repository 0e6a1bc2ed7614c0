/**
 * Progress for long jobs: a bar with ETA on a terminal (cli-progress), a plain
 * line every few seconds when stderr is not a TTY (CI logs), or JSON lines
 * with --json for machines.
 */
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  start(total: number, label: string): void;
  update(done: number, info?: Record<string, string | number>): void;
  stop(): void;
}

function eta(start: number, done: number, total: number): string {
  if (done === 0) return '?';
  const s = (((Date.now() - start) / done) * (total - done)) / 1000;
  return s < 90 ? `${Math.round(s)}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
}

/** A reporter that writes one line at most every `everyMs` (and at the end). */
function lineReporter(
  everyMs: number,
  format: (label: string, done: number, total: number, eta: string, info: Record<string, string | number>) => string,
): ProgressReporter {
  let total = 0;
  let label = '';
  let t0 = 0;
  let last = 0;
  return {
    start(n, l) {
      total = n;
      label = l;
      t0 = Date.now();
      last = 0;
    },
    update(done, info = {}) {
      if (Date.now() - last < everyMs && done < total) return;
      last = Date.now();
      process.stderr.write(`${format(label, done, total, eta(t0, done, total), info)}\n`);
    },
    stop() {},
  };
}

export function createProgress(mode: 'auto' | 'json' | 'silent' = 'auto'): ProgressReporter {
  if (mode === 'silent') return { start() {}, update() {}, stop() {} };
  if (mode === 'json') return lineReporter(1000, (label, done, total, e, info) => JSON.stringify({ progress: label, done, total, eta: e, ...info }));
  if (!process.stderr.isTTY) {
    return lineReporter(5000, (label, done, total, e, info) => {
      const extra = Object.entries(info)
        .map(([k, v]) => `${k} ${v}`)
        .join('  ');
      return `${label} ${done}/${total} (${Math.round((100 * done) / Math.max(1, total))}%) ETA ${e}  ${extra}`;
    });
  }
  const bar = new cliProgress.SingleBar(
    { format: '{label} [{bar}] {percentage}% {value}/{total} ETA {eta_formatted} {info}', hideCursor: true, stream: process.stderr, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  return {
    start(n, l) {
      bar.start(n, 0, { label: l, info: '' });
    },
    update(done, info = {}) {
      bar.update(done, {
        info: Object.entries(info)
          .map(([k, v]) => `${k} ${v}`)
          .join('  '),
      });
    },
    stop() {
      bar.stop();
    },
  };
}
