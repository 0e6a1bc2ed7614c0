/**
 * Server-side aggregation of the sites' weights after a round:
 * - FedAvg (McMahan et al. 2017): the mean of the sites' weights, each site
 *   weighted by the examples (cases) it trained on;
 * - FedProx (Li et al. 2020) aggregates as FedAvg; its difference is the
 *   proximal term in the sites' training (train/proximal.ts);
 * - FedBN (Li et al. 2021): normalisation layers' parameters and statistics
 *   stay at each site and are not averaged (different scanners, different
 *   intensity statistics); the global model carries the previous values of
 *   those tensors and each site keeps its own.
 */
import * as torch from '@medseg/torch';

export type FederatedAlgorithm = 'fedavg' | 'fedprox' | 'fedbn';

/** A site's weights after local training: tensor name -> values (float32). */
export interface SiteUpdate {
  site: string;
  weights: Map<string, Float32Array>;
  /** Training cases the site has: its weight in the mean. */
  examples: number;
}

export class AggregationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AggregationError';
  }
}

/** Names of the tensors of every normalisation layer (batch, instance, group, layer norm) in a module tree: FedBN keeps them local. */
export function normalisationTensorNames(net: torch.nn.Module): Set<string> {
  const names = new Set<string>();
  for (const [prefix, m] of net.namedModules()) {
    if (!(m instanceof torch.nn.BatchNorm || m instanceof torch.nn.InstanceNorm || m instanceof torch.nn.GroupNorm || m instanceof torch.nn.LayerNorm))
      continue;
    for (const [n] of m.namedParameters(prefix)) names.add(n);
    for (const [n] of m.namedBuffers(prefix)) names.add(n);
  }
  return names;
}

/**
 * The new global weights: the example-weighted mean of the sites' tensors,
 * except the `local` ones (FedBN's norms), which keep the previous global
 * values. Every site must send every tensor of the global model, with its shape.
 */
export function aggregate(
  global: ReadonlyMap<string, Float32Array>,
  updates: readonly SiteUpdate[],
  local: ReadonlySet<string> = new Set(),
): Map<string, Float32Array> {
  if (updates.length === 0) throw new AggregationError('no site sent weights this round');
  const total = updates.reduce((s, u) => s + u.examples, 0);
  for (const u of updates) {
    if (!(u.examples > 0 && Number.isFinite(u.examples)))
      throw new AggregationError(`site ${u.site}: the number of training cases must be > 0, not ${u.examples}`);
    for (const [name, g] of global) {
      const w = u.weights.get(name);
      if (!w) throw new AggregationError(`site ${u.site} sent no tensor ${name}`);
      if (w.length !== g.length) throw new AggregationError(`site ${u.site}: ${name} has ${w.length} values, the global model ${g.length}`);
    }
    for (const name of u.weights.keys()) if (!global.has(name)) throw new AggregationError(`site ${u.site} sent ${name}, which the global model does not have`);
  }
  const out = new Map<string, Float32Array>();
  for (const [name, g] of global) {
    if (local.has(name)) {
      out.set(name, Float32Array.from(g));
      continue;
    }
    const acc = new Float64Array(g.length);
    for (const u of updates) {
      const w = u.weights.get(name)!;
      const f = u.examples / total;
      for (let i = 0; i < acc.length; i++) acc[i]! += f * w[i]!;
    }
    for (let i = 0; i < acc.length; i++) if (!Number.isFinite(acc[i]!)) throw new AggregationError(`the mean of ${name} is not finite: a site sent NaN or Inf`);
    out.set(name, Float32Array.from(acc));
  }
  return out;
}
