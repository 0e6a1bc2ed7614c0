/**
 * `medseg federate serve|join`: federated training across sites that keep
 * their data. `serve` runs the coordinator, which hands out the shared plan
 * and the global weights, aggregates the sites' updates each round
 * (FedAvg, FedProx or FedBN; optionally securely) and writes the final
 * model folder; `join` runs a site, which trains on its own dataset folder;
 * `split` makes site folders of one dataset to simulate a federation.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { printResult } from '../output.ts';

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
};
const nonNegative = (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && Number.isFinite(n))) throw new InvalidArgumentError('expected a number >= 0');
  return n;
};
const positive = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && Number.isFinite(n))) throw new InvalidArgumentError('expected a number > 0');
  return n;
};

export function register(program: Command): void {
  const federate = program
    .command('federate')
    .description('federated training: a coordinator (serve) and sites (join) that keep their data; split simulates sites');

  federate
    .command('serve')
    .description('run the coordinator until the last round; its folder becomes the final model folder')
    .requiredOption('--out <dir>', "coordinator folder: plan, each round's global weights, the final model (a restarted coordinator resumes from it)")
    .requiredOption('--plan <plan.json>', 'the shared plan every site trains with')
    .requiredOption('--sites <keys.json>', 'the sites and their keys: {"<site>": "<key of 16+ characters>", ...}')
    .requiredOption('--rounds <n>', 'federation rounds', positiveInt)
    .addOption(new Option('--algorithm <name>', 'aggregation').choices(['fedavg', 'fedprox', 'fedbn']).default('fedavg'))
    .option('--mu <mu>', "FedProx's proximal weight", nonNegative, 0.01)
    .option('--local-epochs <n>', "sites' local epochs per round (of the plan's iterations per epoch)", positiveInt, 1)
    .option('--quorum <n>', 'updates that close a round at once (default: every site)', positiveInt)
    .option('--min-updates <n>', 'updates a round needs to close at its timeout (default 1; 2 with secure aggregation)', positiveInt)
    .option('--round-timeout <seconds>', 'after this, a round closes with the updates it has (at least --min-updates)', positive, 600)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0: any free one)', (v: string) => Number(v), 0)
    .option('--tls-key <file>', 'serve HTTPS with this key (PEM), with --tls-cert')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--secure-aggregation', 'sites send pairwise-masked updates: the coordinator sees only their sum')
    .option('--linger <seconds>', 'keep answering this long after the last round, for the sites to fetch the final model', nonNegative, 10)
    .action(
      async (
        o: {
          out: string;
          plan: string;
          sites: string;
          rounds: number;
          algorithm: 'fedavg' | 'fedprox' | 'fedbn';
          mu: number;
          localEpochs: number;
          quorum?: number;
          minUpdates?: number;
          roundTimeout: number;
          host: string;
          port: number;
          tlsKey?: string;
          tlsCert?: string;
          secureAggregation?: boolean;
          linger: number;
        },
        c: Command,
      ) => {
        if (Boolean(o.tlsKey) !== Boolean(o.tlsCert)) throw new CliUsageError('--tls-key and --tls-cert go together');
        const { readFileSync } = await import('node:fs');
        const { serveFederation } = await import('../../federated/serve.ts');
        const r = await serveFederation({
          out: o.out,
          plan: o.plan,
          sites: o.sites,
          rounds: o.rounds,
          algorithm: o.algorithm,
          mu: o.mu,
          localEpochs: o.localEpochs,
          quorum: o.quorum,
          minUpdates: o.minUpdates,
          roundTimeoutMs: o.roundTimeout * 1000,
          secureAggregation: o.secureAggregation,
          host: o.host,
          port: o.port,
          lingerMs: o.linger * 1000,
          ...(o.tlsKey ? { https: { key: readFileSync(o.tlsKey), cert: readFileSync(o.tlsCert!) } } : {}),
        });
        printResult(c, { modelDir: r.modelDir, rounds: r.rounds }, () =>
          [
            `model: ${r.modelDir}`,
            ...r.rounds.map(
              (x) =>
                `  round ${x.round}: ${x.sites.map((s) => `${s.site} (${s.examples} cases${s.epsilon !== null ? `, epsilon ${s.epsilon.toFixed(2)}` : ''})`).join(', ')}, closed by ${x.closedBy}`,
            ),
          ].join('\n'),
        );
      },
    );

  federate
    .command('split')
    .description("simulate sites: split a dataset's training cases across site folders (symbolic links, no copies)")
    .argument('<dataset>', 'nnU-Net / MSD raw dataset folder')
    .requiredOption('--out <dir>', 'folder for the site folders site_0, site_1, ...')
    .requiredOption('--sites <n>', 'number of sites', positiveInt)
    .addOption(
      new Option('--by <what>', 'case: a seeded shuffle cut evenly; intensity: sorted by median foreground intensity (non-IID)')
        .choices(['case', 'intensity'])
        .default('intensity'),
    )
    .option('--seed <n>', 'seed of the shuffle (--by case)', (v: string) => Number(v), 20261203)
    .action(async (dataset: string, o: { out: string; sites: number; by: 'case' | 'intensity'; seed: number }, c: Command) => {
      const { splitAcrossSites } = await import('../../federated/site-split.ts');
      const sites = await splitAcrossSites({ dataset, out: o.out, sites: o.sites, strategy: o.by === 'case' ? 'by-case' : 'by-intensity', seed: o.seed });
      printResult(c, { sites }, () =>
        sites
          .map(
            (s) =>
              `${s.dir}: ${s.ids.length} cases` +
              (s.medianIntensity
                ? `, median foreground intensity ${Math.min(...s.medianIntensity).toFixed(1)} .. ${Math.max(...s.medianIntensity).toFixed(1)}`
                : ''),
          )
          .join('\n'),
      );
    });

  federate
    .command('join')
    .description("run a site: train each round on this site's dataset and send the update")
    .argument('<coordinator-url>', 'the coordinator, e.g. http://10.0.0.5:7070')
    .requiredOption('--data <dataset>', "the site's nnU-Net raw dataset folder")
    .requiredOption('--site <name>', "this site's name, as in the coordinator's --sites file")
    .option('--key <key>', "this site's key (default: the MEDSEG_FEDERATION_KEY environment variable, which other users cannot see in the process list)")
    .option('--work <dir>', "the site's working folder (round outputs, state, its final model folder model/)")
    .option('--dp-noise <sigma>', 'DP-SGD: Gaussian noise as a multiple of the clipping norm (with --dp-clip)', nonNegative)
    .option('--dp-clip <C>', "DP-SGD: clip each example's gradient to this L2 norm", positive)
    .option('--dp-delta <delta>', 'the delta epsilon is reported for', positive, 1e-5)
    .option('--seed <n>', 'random seed', (v: string) => Number(v), 12345)
    .action(
      async (
        url: string,
        o: { data: string; site: string; key?: string; work?: string; dpNoise?: number; dpClip?: number; dpDelta: number; seed: number },
        c: Command,
      ) => {
        if ((o.dpNoise === undefined) !== (o.dpClip === undefined)) throw new CliUsageError('--dp-noise and --dp-clip go together');
        const key = o.key ?? process.env.MEDSEG_FEDERATION_KEY;
        if (!key) throw new CliUsageError("give the site's key: --key <key> or the MEDSEG_FEDERATION_KEY environment variable");
        const { joinFederation } = await import('../../federated/site.ts');
        const r = await joinFederation({
          url,
          site: o.site,
          key,
          dataset: o.data,
          work: o.work ?? `federated-${o.site}`,
          seed: o.seed,
          ...(o.dpNoise !== undefined ? { dp: { noiseMultiplier: o.dpNoise, clipNorm: o.dpClip!, delta: o.dpDelta } } : {}),
        });
        printResult(c, { modelDir: r.modelDir, rounds: r.rounds }, () =>
          [
            `site model: ${r.modelDir}`,
            ...r.rounds.map(
              (x) => `  round ${x.round}: ${x.steps} steps, ${x.seconds.toFixed(1)} s${x.epsilon !== null ? `, epsilon ${x.epsilon.toFixed(3)}` : ''}`,
            ),
          ].join('\n'),
        );
      },
    );
}
