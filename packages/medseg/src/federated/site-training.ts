/**
 * One site's local training in a round, with the normal pipeline: the site's
 * raw dataset folder is preprocessed with the shared plan (cached in the
 * dataset's or the site's folder), and the trainer (train/trainer.ts) runs
 * the round's local epochs from the global weights, with FedProx's proximal
 * term when mu > 0 and DP-SGD when asked. The update is local - global over
 * the shared tensors. The site's network lives across rounds, so FedBN's
 * norm tensors stay the site's own; they are saved after every round so a
 * restarted site keeps them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '@medseg/torch';
import { readDataset, type Dataset } from '../data/dataset.ts';
import { preprocessDataset } from '../data/preprocess.ts';
import { createNetwork } from '../models/registry.ts';
import type { Plan } from '../plan/types.ts';
import { cacheDirFor, loaderData } from '../pipeline/train-model.ts';
import type { DpSettings } from '../train/dp-sgd.ts';
import { epsilonFromRdp, sampledGaussianRdp } from '../train/privacy-accountant.ts';
import { ProximalTerm } from '../train/proximal.ts';
import { train, type TrainingData } from '../train/trainer.ts';
import { trainerConfig } from '../train/trainer-config.ts';
import { mixSeed } from '../util/random.ts';
import { writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic-write.ts';
import { decodeWeights, encodeWeights, readNetWeights, sharedShapes, writeNetWeights, type WeightShapes, type WeightValues } from './weights.ts';

const SILENT = { start() {}, update() {}, stop() {} };

export interface SiteDp extends DpSettings {
  /** The delta epsilon is reported for. */
  delta: number;
}

export interface LocalRound {
  /** local - global of every shared tensor. */
  delta: WeightValues;
  examples: number;
  steps: number;
  /** Privacy spent by the site over all its rounds so far (DP-SGD only). */
  privacy: { epsilon: number; delta: number } | null;
  seconds: number;
}

/** What a site keeps between rounds and restarts, in <work>/site.json. */
interface SiteState {
  /** DP-SGD steps taken over all rounds, for the accountant. */
  dpSteps: number;
}

export class SiteTrainer {
  readonly net: ReturnType<typeof createNetwork>;
  readonly shared: WeightShapes;
  private readonly dataset: Dataset;
  private batches: TrainingData | null = null;
  private state: SiteState = { dpSteps: 0 };

  constructor(
    private readonly plan: Plan,
    datasetDir: string,
    private readonly work: string,
    private readonly localTensors: readonly string[],
    private readonly seed = 12345,
  ) {
    this.dataset = readDataset(datasetDir);
    torch.manualSeed(seed);
    this.net = createNetwork(plan.network);
    this.shared = sharedShapes(this.net, new Set(localTensors));
    const localFile = join(work, 'local.safetensors');
    if (localTensors.length && existsSync(localFile)) {
      const local = sharedShapes(this.net);
      for (const n of this.shared.keys()) local.delete(n);
      writeNetWeights(this.net, decodeWeights(readFileSync(localFile), local, localFile).values);
    }
    const stateFile = join(work, 'site.json');
    if (existsSync(stateFile)) this.state = JSON.parse(readFileSync(stateFile, 'utf8')) as SiteState;
  }

  get examples(): number {
    return this.dataset.training.length;
  }

  /**
   * Preprocesses the site's cases with the plan (cached) and starts the batch
   * loader, which serves every round: round r's epochs are epochs
   * (r - 1) * localEpochs ... of one seeded batch sequence, so the loader's
   * worker keeps running between rounds.
   */
  async prepare(): Promise<void> {
    const cacheDir = cacheDirFor(this.dataset, this.plan, this.work);
    await preprocessDataset(this.dataset, this.plan, cacheDir);
    this.batches = loaderData(
      cacheDir,
      this.dataset.training.map((c) => c.id),
      this.plan,
      this.seed,
      1,
      [],
    );
  }

  /** Trains the round's local epochs from the global weights; returns the update. */
  async trainRound(round: number, global: WeightValues, o: { localEpochs: number; mu: number; dp?: SiteDp }): Promise<LocalRound> {
    const t0 = Date.now();
    writeNetWeights(this.net, global);
    const cfg = { ...trainerConfig(this.plan), epochs: o.localEpochs, timeBudgetMinutes: 0, earlyStoppingPatience: 0, checkpointEvery: o.localEpochs };
    const seed = mixSeed(this.seed, round);
    torch.manualSeed(seed);
    const proximal = o.mu > 0 ? new ProximalTerm(this.net.parameters(), o.mu) : undefined;
    const batches = this.batches;
    if (!batches) throw new Error('SiteTrainer.prepare() must run before trainRound()');
    const first = (round - 1) * o.localEpochs;
    const data: TrainingData = { validation: [], nextBatch: (epoch, it) => batches.nextBatch(first + epoch, it) };
    let steps: number;
    try {
      const r = await train(this.net, cfg, data, join(this.work, `round_${round}`), { progress: SILENT, proximal, dp: o.dp });
      steps = r.steps;
    } finally {
      proximal?.dispose();
    }
    const local = readNetWeights(this.net, this.shared.keys());
    const delta: WeightValues = new Map();
    for (const [name, w] of local) {
      const g = global.get(name)!;
      delta.set(
        name,
        Float32Array.from(w, (v, i) => v - g[i]!),
      );
    }
    if (this.localTensors.length) {
      const names = [...sharedShapes(this.net).keys()].filter((n) => !this.shared.has(n));
      const shapes = sharedShapes(this.net);
      writeFileAtomicSync(join(this.work, 'local.safetensors'), encodeWeights(readNetWeights(this.net, names), shapes));
    }
    let privacy: LocalRound['privacy'] = null;
    if (o.dp) {
      this.state.dpSteps += steps;
      const q = Math.min(1, this.plan.batchSize / this.examples);
      privacy = { epsilon: epsilonFromRdp(sampledGaussianRdp(q, o.dp.noiseMultiplier, this.state.dpSteps), o.dp.delta).epsilon, delta: o.dp.delta };
    }
    writeJsonAtomicSync(join(this.work, 'site.json'), this.state);
    return { delta, examples: this.examples, steps, privacy, seconds: (Date.now() - t0) / 1000 };
  }

  async close(): Promise<void> {
    await this.batches?.close?.();
    this.net.dispose();
  }
}
