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
  const s = ((Date.now() - start) / done) * (total - done) / 1000;
  return s < 90 ? `${Math.round(s)}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`;
}

export function createProgress(mode: 'auto' | 'json' | 'silent' = 'auto'): ProgressReporter {
  if (mode === 'silent') return { start() {}, update() {}, stop() {} };
  if (mode === 'json') {
    let total = 0;
    let label = '';
    let t0 = 0;
    let last = 0;
    return {
      start(n, l) {
        total = n;
        label = l;
        t0 = Date.now();
      },
      update(done, info = {}) {
        if (Date.now() - last < 1000 && done < total) return;
        last = Date.now();
        process.stderr.write(`${JSON.stringify({ progress: label, done, total, eta: eta(t0, done, total), ...info })}\n`);
      },
      stop() {},
    };
  }
  if (!process.stderr.isTTY) {
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
        if (Date.now() - last < 5000 && done < total) return;
        last = Date.now();
        const extra = Object.entries(info)
          .map(([k, v]) => `${k} ${v}`)
          .join('  ');
        process.stderr.write(`${label} ${done}/${total} (${Math.round((100 * done) / Math.max(1, total))}%) ETA ${eta(t0, done, total)}  ${extra}\n`);
      },
      stop() {},
    };
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
