/**
 * The named layers an explanation can look at, and the two pieces of
 * machinery every gradient method shares: capturing a layer's output during a
 * forward pass (the engine's forward hooks), and running backward with the
 * network's parameters frozen, so gradients flow to the input and the
 * activations and never accumulate in the weights.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import { MedsegExplainError } from './errors.ts';

/** The module of a dotted name (as namedModules lists them); a clear error with the candidates otherwise. */
export function findLayer(net: torch.nn.Module, name: string): torch.nn.Module {
  const all = net.namedModules();
  const hit = all.find(([n]) => n === name);
  if (hit) return hit[1];
  const tops = [...new Set(all.map(([n]) => n.split('.').slice(0, 2).join('.')).filter(Boolean))];
  throw new MedsegExplainError(
    'NO_LAYER',
    `the network has no layer '${name}'; layers include: ${tops.slice(0, 40).join(', ')}${tops.length > 40 ? ', ...' : ''}`,
  );
}

/**
 * The default Grad-CAM layer: the coarsest decoder stage ('decoder.0', or the
 * layer a network without a decoder list names by gradCamLayer(), as UNet++
 * does), whose features are both semantic and still spatial (the bottleneck
 * alone gives blocks of a few voxels, the last decoder stage little more
 * than the logits).
 */
export function defaultLayer(net: torch.nn.Module): string {
  const named = (net as { gradCamLayer?: () => string }).gradCamLayer?.();
  if (named) return named;
  if (net.namedModules().some(([n]) => n === 'decoder.0')) return 'decoder.0';
  throw new MedsegExplainError('NO_LAYER', `this network has no 'decoder.0': name a layer (--layer) whose output is a feature map [N, C, ...spatial]`);
}

/** Runs fn with every parameter's requiresGrad off (restored afterwards), so backward reaches inputs and activations only. */
export function withFrozenParameters<T>(net: torch.nn.Module, fn: () => T): T {
  const params = net.parameters();
  const was = params.map((p) => p.requiresGrad);
  for (const p of params) p.requiresGrad_(false);
  try {
    return fn();
  } finally {
    params.forEach((p, i) => p.requiresGrad_(was[i]!));
  }
}

/** Anything with a forward pass giving logits: a segmentation network or a classifier. */
export type LogitsNetwork = torch.nn.Module & { forward(x: Tensor): Tensor | Tensor[] };

/** The logits of a forward pass (the first output under deep supervision). */
export function forwardLogits(net: LogitsNetwork, x: Tensor): Tensor {
  const out = net.forward(x);
  return Array.isArray(out) ? out[0]! : out;
}

/**
 * One forward pass of x with the output of `layer` captured. The captured
 * tensor is kept out of every tidy() scope (a module may free its
 * intermediates in its own scope) and retains its gradient; the caller
 * disposes it.
 */
export function forwardCapturing(net: LogitsNetwork, layer: torch.nn.Module, layerName: string, x: Tensor): { logits: Tensor; activation: Tensor } {
  let activation: Tensor | null = null;
  const remove = layer.registerForwardHook((_m, _inputs, output) => {
    const t = Array.isArray(output) ? output[0] : output;
    if (!(t instanceof torch.Tensor)) throw new MedsegExplainError('NO_LAYER', `layer '${layerName}' does not output a tensor`);
    activation?.dispose();
    activation = torch.keep(t.retainGrad());
  });
  try {
    const logits = forwardLogits(net, x);
    if (!activation) throw new MedsegExplainError('NO_LAYER', `layer '${layerName}' did not run in the forward pass`);
    return { logits, activation };
  } catch (e) {
    (activation as Tensor | null)?.dispose();
    throw e;
  } finally {
    remove();
  }
}
