/**
 * Federated learning on MSD hippocampus: the fixed split's 140 training cases
 * (packages/medseg/src/demo/hippocampus-split.ts) across 4 sites by
 * foreground intensity (non-IID: each site sees another intensity profile),
 * scored on the 34 validation cases. Every arm trains the same network of the
 * same plan with the same total number of training iterations (summed over
 * sites), through the real coordinator and site code on loopback (in one
 * process: the sites' steps interleave, as they would share 2 cores anyway):
 *
 *   centralised      one site holding all 140 cases, one round
 *   single-site      site_0 alone (its 35 darkest cases), one round
 *   fedavg, fedprox, fedbn   4 sites, R rounds
 *   fedavg-dp-eps<e> FedAvg with DP-SGD at every site, the noise set so that
 *                    each site spends epsilon e (delta 1e-5) over the run
 *
 * FedBN is scored with each site's own model (its norms; mean over sites)
 * and with the global model (norms at their initial values).
 * Dice: predict (sliding window, no TTA) + evaluate on the original grid.
 *
 *   npm run bench -- federated [--iterations 800] [--rounds 10] [--features 16,32,64,128] [--epsilons 8,2] [--mu 0.01]
 *   npm run bench -- federated --smoke    (8 cases, tiny network, 2 rounds; prints, writes no result)
 */
import { existsSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readDataset } from '../packages/medseg/src/data/dataset.ts';
import { computeFingerprint } from '../packages/medseg/src/data/fingerprint.ts';
import { importMsdHippocampus } from '../packages/medseg/src/data/import.ts';
import { makePlan } from '../packages/medseg/src/data/planner.ts';
import { HIPPOCAMPUS_SPLIT } from '../packages/medseg/src/demo/hippocampus-split.ts';
import { evaluateFolder } from '../packages/medseg/src/eval/evaluate-folder.ts';
import type { FederatedAlgorithm } from '../packages/medseg/src/federated/aggregate.ts';
import { Coordinator } from '../packages/medseg/src/federated/coordinator.ts';
import { coordinatorServer } from '../packages/medseg/src/federated/coordinator-server.ts';
import { joinFederation, type JoinResult } from '../packages/medseg/src/federated/site.ts';
import { splitAcrossSites, type SiteFolder } from '../packages/medseg/src/federated/site-split.ts';
import type { SiteDp } from '../packages/medseg/src/federated/site-training.ts';
import { predictPath } from '../packages/medseg/src/pipeline/predict-folder.ts';
import type { Plan } from '../packages/medseg/src/plan/types.ts';
import { dataPath, repoRoot } from '../packages/medseg/src/testing/data.ts';
import { noiseMultiplierFor } from '../packages/medseg/src/train/privacy-accountant.ts';
import { writeResult } from './lib/report.ts';
import { stageHeldOut } from './lib/stage-cases.ts';

const QUIET = { start() {}, update() {}, stop() {} };
const DELTA = 1e-5;

interface Arm {
  name: string;
  sites: SiteFolder[];
  algorithm: FederatedAlgorithm;
  rounds: number;
  /** Local iterations per site and round. */
  iterations: number;
  mu?: number;
  /** Target epsilon of every site over the run (DP-SGD). */
  epsilon?: number;
}

interface ArmResult {
  arm: string;
  algorithm: FederatedAlgorithm;
  sites: number;
  rounds: number;
  iterationsPerSiteRound: number;
  totalIterations: number;
  wallSeconds: number;
  dice: { anterior: number; posterior: number; mean: number };
  /** FedBN: the global model's Dice beside the site models' mean. */
  globalDice?: { anterior: number; posterior: number; mean: number };
  dp?: { targetEpsilon: number; delta: number; clipNorm: number; sites: { site: string; noiseMultiplier: number; epsilon: number }[] };
}

async function scoreModel(model: string, imgDir: string, refDir: string, out: string) {
  rmSync(out, { recursive: true, force: true });
  await predictPath({ model, input: imgDir, out, progress: QUIET });
  const ev = await evaluateFolder({ predictions: out, references: refDir, labels: [1, 2] });
  const dice = (l: number) => ev.summary.find((s) => s.metric === 'dice' && Number(s.label) === l)!.mean;
  return { anterior: dice(1), posterior: dice(2), mean: (dice(1) + dice(2)) / 2 };
}

const meanDice = (ds: { anterior: number; posterior: number; mean: number }[]) => ({
  anterior: ds.reduce((s, d) => s + d.anterior, 0) / ds.length,
  posterior: ds.reduce((s, d) => s + d.posterior, 0) / ds.length,
  mean: ds.reduce((s, d) => s + d.mean, 0) / ds.length,
});

async function runArm(arm: Arm, plan: Plan, out: string, held: { imgDir: string; refDir: string }, clipNorm: number): Promise<ArmResult> {
  const dir = join(out, arm.name);
  rmSync(dir, { recursive: true, force: true });
  const keys = new Map(arm.sites.map((s) => [s.name, `bench-key-${s.name}-0123456789`]));
  const armPlan: Plan = { ...plan, iterationsPerEpoch: arm.iterations };
  const dpFor = (s: SiteFolder): SiteDp | undefined =>
    arm.epsilon === undefined
      ? undefined
      : {
          clipNorm,
          delta: DELTA,
          noiseMultiplier: noiseMultiplierFor(arm.epsilon, DELTA, Math.min(1, plan.batchSize / s.ids.length), arm.rounds * arm.iterations),
        };
  const c = new Coordinator({
    dir: join(dir, 'coordinator'),
    plan: armPlan,
    algorithm: arm.algorithm,
    rounds: arm.rounds,
    mu: arm.mu ?? 0,
    localEpochs: 1,
    sites: keys,
    roundTimeoutMs: 24 * 3600_000,
    secureAggregation: false,
    log: (l) => {
      if (/aggregated/.test(l)) process.stderr.write(`  ${arm.name}: ${l}\n`);
    },
  });
  await c.start();
  const app = coordinatorServer(c);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const t0 = Date.now();
  let joined: JoinResult[];
  try {
    joined = await Promise.all(
      arm.sites.map((s) =>
        joinFederation({ url, site: s.name, key: keys.get(s.name)!, dataset: s.dir, work: join(dir, `work-${s.name}`), dp: dpFor(s), log: () => {} }),
      ),
    );
    await c.whenFinished();
  } finally {
    await app.close();
    c.close();
  }
  const wallSeconds = (Date.now() - t0) / 1000;
  const global = await scoreModel(join(dir, 'coordinator'), held.imgDir, held.refDir, join(dir, 'predictions'));
  const result: ArmResult = {
    arm: arm.name,
    algorithm: arm.algorithm,
    sites: arm.sites.length,
    rounds: arm.rounds,
    iterationsPerSiteRound: arm.iterations,
    totalIterations: arm.sites.length * arm.rounds * arm.iterations,
    wallSeconds,
    dice: global,
  };
  if (arm.algorithm === 'fedbn') {
    const perSite = [];
    for (const j of joined) perSite.push(await scoreModel(j.modelDir, held.imgDir, held.refDir, join(j.modelDir, '..', 'predictions')));
    result.dice = meanDice(perSite);
    result.globalDice = global;
  }
  if (arm.epsilon !== undefined)
    result.dp = {
      targetEpsilon: arm.epsilon,
      delta: DELTA,
      clipNorm,
      sites: arm.sites.map((s, k) => ({ site: s.name, noiseMultiplier: dpFor(s)!.noiseMultiplier, epsilon: joined[k]!.rounds.at(-1)!.epsilon! })),
    };
  process.stderr.write(`${arm.name}: Dice ${result.dice.mean.toFixed(4)} in ${wallSeconds.toFixed(0)} s\n`);
  return result;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      smoke: { type: 'boolean', default: false },
      iterations: { type: 'string' },
      rounds: { type: 'string' },
      features: { type: 'string' },
      epsilons: { type: 'string', default: '8,2' },
      mu: { type: 'string', default: '0.01' },
      clip: { type: 'string', default: '1' },
      out: { type: 'string' },
    },
  });
  const smoke = values.smoke!;
  const out = values.out ?? join(repoRoot, smoke ? 'runs/bench-federated-smoke' : 'runs/bench-federated');
  const total = Number(values.iterations ?? (smoke ? 16 : 800));
  const rounds = Number(values.rounds ?? (smoke ? 2 : 10));
  const features = (values.features ?? (smoke ? '4,8,16,32' : '16,32,64,128')).split(',').map(Number);
  const epsilons = values.epsilons!.split(',').map(Number);
  const nSites = 4;
  const perSiteRound = total / (nSites * rounds);
  if (!Number.isInteger(perSiteRound) || perSiteRound < 1) throw new Error(`--iterations must be a multiple of sites x rounds (${nSites * rounds})`);
  const train = smoke ? HIPPOCAMPUS_SPLIT.train.slice(0, 8) : HIPPOCAMPUS_SPLIT.train;
  const validation = smoke ? HIPPOCAMPUS_SPLIT.validation.slice(0, 2) : HIPPOCAMPUS_SPLIT.validation;

  const source = dataPath('msd-hippocampus');
  const dataset = join(out, 'dataset');
  if (!existsSync(join(dataset, 'dataset.json'))) await importMsdHippocampus(source, dataset);
  rmSync(join(out, 'sites'), { recursive: true, force: true });
  const sites = await splitAcrossSites({ dataset, out: join(out, 'sites', 'by-intensity'), sites: nSites, strategy: 'by-intensity', ids: train });
  const [everything] = await splitAcrossSites({ dataset, out: join(out, 'sites', 'all'), sites: 1, strategy: 'by-case', ids: train });
  const held = stageHeldOut(source, validation, out);

  const plan = await makePlan(await computeFingerprint(readDataset(everything!.dir)), {});
  plan.network.features = features;
  plan.batchSize = 2;
  plan.epochs = 1;
  plan.inference = { ...plan.inference, mirror: false };
  plan.training = { ...plan.training, optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, schedule: 'constant', warmupEpochs: 0 };

  const loadBefore = loadavg();
  const clip = Number(values.clip);
  const arms: Arm[] = [
    { name: 'centralised', sites: [everything!], algorithm: 'fedavg', rounds: 1, iterations: total },
    { name: 'single-site', sites: [sites[0]!], algorithm: 'fedavg', rounds: 1, iterations: total },
    { name: 'fedavg', sites, algorithm: 'fedavg', rounds, iterations: perSiteRound },
    { name: 'fedprox', sites, algorithm: 'fedprox', rounds, iterations: perSiteRound, mu: Number(values.mu) },
    { name: 'fedbn', sites, algorithm: 'fedbn', rounds, iterations: perSiteRound },
    ...epsilons.map((e): Arm => ({ name: `fedavg-dp-eps${e}`, sites, algorithm: 'fedavg', rounds, iterations: perSiteRound, epsilon: e })),
  ];
  const results: ArmResult[] = [];
  for (const arm of arms) results.push(await runArm(arm, plan, out, held, clip));

  const body = {
    data: `MSD hippocampus, ${train.length} training cases across ${nSites} sites by median foreground intensity, ${validation.length} validation cases (packages/medseg/src/demo/hippocampus-split.ts)`,
    sites: sites.map((s) => ({ site: s.name, cases: s.ids.length, medianIntensity: [Math.min(...s.medianIntensity!), Math.max(...s.medianIntensity!)] })),
    plan: { patchSize: plan.patchSize, batchSize: plan.batchSize, features, training: plan.training, mirror: false },
    budget: `${total} training iterations per arm (summed over sites); ${rounds} rounds for the federated arms`,
    note: 'all sites in one process on loopback HTTP; wall time includes coordination, not the final prediction',
    arms: results,
  };
  console.log(
    results
      .map(
        (r) =>
          `${r.arm.padEnd(18)} Dice ${r.dice.mean.toFixed(4)} (${r.dice.anterior.toFixed(3)} / ${r.dice.posterior.toFixed(3)})  ${r.wallSeconds.toFixed(0).padStart(5)} s` +
          (r.dp ? `  epsilon ${r.dp.sites.map((s) => s.epsilon.toFixed(2)).join(', ')}` : ''),
      )
      .join('\n'),
  );
  if (smoke) console.log('smoke run: no result written');
  else console.log(`wrote ${writeResult('federated', args, body, loadBefore)}`);
}
