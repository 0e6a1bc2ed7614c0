/**
 * Drives a Python benchmark peer (bench/py/peer.py's line protocol): one JSON
 * line when ready, then one JSON answer per JSON request. The process stays
 * alive between requests, so a bench can alternate medseg and PyTorch rounds
 * in the same run without paying interpreter start-up each time.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Debian's Python: its torch is the same libtorch 1.13 the binding links. */
export const PYTHON = '/usr/bin/python3';
const pyDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'py');

export class PythonPeer {
  private readonly lines: AsyncIterator<string>;
  private stderr = '';
  private constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    proc.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  }

  /** Starts bench/py/<script> and resolves with its ready message. */
  static async start(script: string, args: string[], env: Record<string, string> = {}): Promise<{ peer: PythonPeer; ready: Record<string, unknown> }> {
    const proc = spawn(PYTHON, [join(pyDir, script), ...args], { env: { ...process.env, ...env }, stdio: 'pipe' });
    const peer = new PythonPeer(proc);
    const ready = await peer.next();
    return { peer, ready };
  }

  private async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`python peer exited early:\n${this.stderr}`);
    const msg = JSON.parse(r.value) as Record<string, unknown>;
    if (typeof msg.error === 'string') throw new Error(`python peer: ${msg.error}`);
    return msg;
  }

  async request<T = Record<string, unknown>>(msg: Record<string, unknown>): Promise<T> {
    this.proc.stdin.write(`${JSON.stringify(msg)}\n`);
    return (await this.next()) as T;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((res) => this.proc.once('exit', () => res()));
    this.proc.stdin.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
    await exited;
  }
}
