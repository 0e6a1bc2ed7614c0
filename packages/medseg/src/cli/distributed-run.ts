/**
 * Data-parallel runs of a command: `--ranks N` starts N processes of the same
 * command line on this machine (ranks 0..N-1 meeting at a free loopback port),
 * and `--rank/--world-size/--master-addr/--master-port` make this process one
 * rank of a group that may span machines.
 */
import { spawn } from 'node:child_process';
import { InvalidArgumentError, type Command } from 'commander';
import { CliUsageError } from './errors.ts';

export interface DistributedCliOptions {
  ranks?: number;
  rank?: number;
  worldSize?: number;
  masterAddr: string;
  masterPort?: number;
  distTimeout: number;
  bucketMb: number;
}

function integerAtLeast(min: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function positiveNumber(v: string): number {
  const f = Number(v);
  if (!(f > 0 && Number.isFinite(f))) throw new InvalidArgumentError('expected a number > 0');
  return f;
}

export function addDistributedOptions(cmd: Command): Command {
  return cmd
    .option('--ranks <n>', 'data-parallel training in N processes on this machine (rank 0 writes the model folder)', integerAtLeast(1))
    .option('--rank <r>', 'this process is rank R of a data-parallel group spanning machines (with --world-size, --master-port)', integerAtLeast(0))
    .option('--world-size <n>', 'number of ranks in the data-parallel group', integerAtLeast(1))
    .option('--master-addr <host>', "rank 0's address, where the group meets", '127.0.0.1')
    .option('--master-port <port>', "the port rank 0 listens on for the group's rendezvous", integerAtLeast(1))
    .option('--dist-timeout <minutes>', 'how long a rank waits for the others (rendezvous, each collective)', positiveNumber, 30)
    .option('--bucket-mb <mb>', 'gradient all-reduce bucket size in MB', positiveNumber, 25);
}

/** Checks the distributed options: 'spawn' (--ranks N > 1), 'rank' (this process is one rank), or 'single'. */
export function distributedMode(o: DistributedCliOptions): 'spawn' | 'rank' | 'single' {
  const rankOptions = o.rank !== undefined || o.worldSize !== undefined || o.masterPort !== undefined;
  if (o.ranks !== undefined && rankOptions) throw new CliUsageError('--ranks starts every rank itself: leave out --rank, --world-size and --master-port');
  if (o.ranks !== undefined) return o.ranks > 1 ? 'spawn' : 'single';
  if (!rankOptions) return 'single';
  if (o.rank === undefined || o.worldSize === undefined || o.masterPort === undefined)
    throw new CliUsageError('a rank of a data-parallel group needs --rank, --world-size and --master-port (and --master-addr on other machines)');
  if (o.rank >= o.worldSize) throw new CliUsageError(`--rank ${o.rank} is not in a group of --world-size ${o.worldSize}`);
  if (o.masterPort > 65535) throw new CliUsageError(`--master-port ${o.masterPort} is not a TCP port`);
  return 'rank';
}

/** A spawned rank that failed (its own error went to stderr before); reported like the engine's DistributedError. */
export class RankFailedError extends Error {
  override readonly name = 'DistributedError';
  readonly code = 'rank-failed';
}

/** The command line without `--ranks N` (both spellings). */
function withoutRanks(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--ranks') i++;
    else if (!args[i]!.startsWith('--ranks=')) out.push(args[i]!);
  }
  return out;
}

/**
 * Runs `ranks` copies of this command line as ranks of one group on this
 * machine; resolves when every rank succeeded, else throws RankFailedError
 * naming the first rank that failed. Rank 0 prints as the command would; the other
 * ranks' stderr lines are prefixed with their rank. When a rank fails, the
 * others fail at their next collective; any still running 30 s later are
 * stopped.
 */
export async function spawnRanks(ranks: number, argv: readonly string[] = process.argv): Promise<void> {
  const { freePort } = await import('@medseg/torch');
  const port = await freePort();
  const args = withoutRanks(argv.slice(2));
  const children = Array.from({ length: ranks }, (_, rank) => {
    const child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        argv[1]!,
        ...args,
        '--rank',
        String(rank),
        '--world-size',
        String(ranks),
        '--master-addr',
        '127.0.0.1',
        '--master-port',
        String(port),
      ],
      { stdio: rank === 0 ? 'inherit' : ['ignore', 'ignore', 'pipe'] },
    );
    if (rank > 0) {
      let partial = '';
      child.stderr!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const l of lines) if (l.trim()) process.stderr.write(`[rank ${rank}] ${l}\n`);
      });
    }
    return child;
  });
  let firstFailure: string | null = null;
  let reaper: NodeJS.Timeout | null = null;
  await Promise.all(
    children.map(
      (child, rank) =>
        new Promise<void>((resolve) => {
          child.on('exit', (code, signal) => {
            if (code !== 0 && firstFailure === null) {
              firstFailure = `rank ${rank} of ${ranks} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`;
              reaper = setTimeout(() => {
                for (const other of children) if (other.exitCode === null && other.signalCode === null) other.kill('SIGKILL');
              }, 30_000);
            }
            resolve();
          });
        }),
    ),
  );
  if (reaper) clearTimeout(reaper);
  if (firstFailure !== null) throw new RankFailedError(firstFailure);
}
