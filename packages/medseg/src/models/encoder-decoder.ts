/**
 * The common base of every network (config, recorded activations, MC dropout)
 * and the U-shaped encoder-decoder skeleton that U-Net, Attention U-Net,
 * ResUNet, R2U-Net and HybridNet fill with their own blocks.
 */
import * as torch from '@medseg/torch';
import type { Tensor } from '@medseg/torch';
import type { SegmentationNetwork } from './config.ts';
import type { NetworkConfig } from '../plan/types.ts';
import { conv, type Dims } from './blocks-conv.ts';
import { checkInput, initHe, Upsampler, validateConfig } from './blocks-network.ts';

const { nn } = torch;
type Unary = torch.nn.UnaryModule;

export abstract class SegNetBase extends nn.Module implements SegmentationNetwork {
  private acts = new Map<string, Tensor>();
  constructor(readonly config: NetworkConfig) {
    super();
    validateConfig(config);
  }
  abstract forward(x: Tensor): Tensor | Tensor[];

  /**
   * Named activations and attention maps of the last forward. These are the
   * graph's own tensors (not copies, not detached), so Grad-CAM can call
   * retainGrad()/registerHook() on them before backward; they live in the
   * tidy() scope that ran forward and are freed with it.
   */
  lastActivations(): Map<string, Tensor> {
    return new Map(this.acts);
  }
  protected record(name: string, t: Tensor | null | undefined): void {
    if (t) this.acts.set(name, t);
  }
  protected beginForward(): void {
    this.acts = new Map();
  }
  /** Keeps dropout active in eval mode (Monte-Carlo dropout for uncertainty). Returns how many dropout layers it switched. */
  setMcDropout(on: boolean): number {
    let n = 0;
    for (const [, m] of this.namedModules()) {
      if (m instanceof nn.Dropout) {
        m.mcDropout = on;
        n++;
      }
    }
    return n;
  }
  /** Deep-supervision list in training mode, else the full-resolution logits. */
  protected finish(outs: Tensor[]): Tensor | Tensor[] {
    return this.config.deepSupervision && this.training ? outs : outs[0]!;
  }
}

/** A module that can name its own explainability maps of the last forward (attention weights ...). */
export interface Explainable {
  explain(stage: number): [string, Tensor | null | undefined][];
}
const explains = (m: unknown): m is Explainable => typeof (m as Explainable).explain === 'function';

/** Something that refines a skip given the coarser decoder features (an attention gate). */
export interface SkipGate extends torch.nn.Module {
  forward(skip: Tensor, gate: Tensor): Tensor;
  lastAlpha?: Tensor | null;
}

export interface EncoderDecoderParts {
  /** Encoder stage s: (features[s-1] or inChannels) -> features[s], downsampling by strides[s]. */
  encoder(s: number, inC: number, outC: number, kernel: number[], stride: number[]): Unary;
  /** Decoder stage s (s = n-2 .. 0): concat(up, skip) channels -> features[s]. */
  decoder(s: number, inC: number, outC: number, kernel: number[]): Unary;
  /** Optional: applied to the encoder output of stage s (e.g. transformer blocks at coarse stages). */
  afterEncoder?(s: number, channels: number): Unary | null;
  /** Optional: refines skip s on its own (e.g. CBAM). */
  skipRefine?(s: number, channels: number): Unary | null;
  /** Optional: gates skip s with the coarser decoder features (attention gate). */
  skipGate?(s: number, skipC: number, gateC: number): SkipGate | null;
  /** Optional: a stem before stage 0 that replaces the plain input (multi-modal fusion). */
  stem?: Unary | null;
  /** Channels the stem gives to stage 0 (default inChannels). */
  stemChannels?: number;
  /** Weight init after construction (default nnU-Net's He init). */
  init?(net: torch.nn.Module): void;
}

/**
 * U-shaped network: encoder stages (strided first conv), decoder stages that
 * upsample by the same per-axis strides, concatenate the skip and convolve,
 * and a 1x1 segmentation head per decoder stage when deep supervision is on.
 */
export class EncoderDecoderNet extends SegNetBase {
  stem: Unary | null;
  encoder: torch.nn.ModuleList<Unary>;
  afterEncoder: torch.nn.ModuleList<Unary>;
  afterEncoderAt: number[] = [];
  ups: torch.nn.ModuleList<Upsampler>;
  skipRefine: torch.nn.ModuleList<Unary>;
  skipRefineAt: number[] = [];
  gates: torch.nn.ModuleList<SkipGate>;
  gatesAt: number[] = [];
  decoder: torch.nn.ModuleList<Unary>;
  heads: torch.nn.ModuleList<Unary>;

  constructor(config: NetworkConfig, parts: EncoderDecoderParts) {
    super(config);
    const c = config;
    const dims = c.dims as Dims;
    const n = c.features.length;
    this.stem = parts.stem ? this.module('stem', parts.stem) : null;
    this.encoder = this.module('encoder', new nn.ModuleList<Unary>());
    this.afterEncoder = this.module('encoder_post', new nn.ModuleList<Unary>());
    let inC = parts.stemChannels ?? c.inChannels;
    for (let s = 0; s < n; s++) {
      this.encoder.push(parts.encoder(s, inC, c.features[s]!, c.kernelSizes[s]!, c.strides[s]!));
      const post = parts.afterEncoder?.(s, c.features[s]!);
      if (post) {
        this.afterEncoder.push(post);
        this.afterEncoderAt[s] = this.afterEncoder.length - 1;
      }
      inC = c.features[s]!;
    }
    this.ups = this.module('ups', new nn.ModuleList<Upsampler>());
    this.decoder = this.module('decoder', new nn.ModuleList<Unary>());
    this.skipRefine = this.module('skip_refine', new nn.ModuleList<Unary>());
    this.gates = this.module('gates', new nn.ModuleList<SkipGate>());
    this.heads = this.module('seg_heads', new nn.ModuleList<Unary>());
    // Decoder modules are listed from the coarsest decoder stage (s = n-2) to the finest (s = 0), as nnU-Net.
    for (let s = n - 2; s >= 0; s--) {
      const below = c.features[s + 1]!;
      const here = c.features[s]!;
      this.ups.push(new Upsampler(dims, below, here, c.strides[s + 1]!, c.upsample ?? 'transpose'));
      const refine = parts.skipRefine?.(s, here);
      if (refine) {
        this.skipRefine.push(refine);
        this.skipRefineAt[s] = this.skipRefine.length - 1;
      }
      const gate = parts.skipGate?.(s, here, below);
      if (gate) {
        this.gates.push(gate);
        this.gatesAt[s] = this.gates.length - 1;
      }
      this.decoder.push(parts.decoder(s, 2 * here, here, c.kernelSizes[s]!));
      if (s === 0 || c.deepSupervision) this.heads.push(conv(dims, here, c.numClasses, 1, { padding: 0 }));
    }
    (parts.init ?? initHe)(this);
  }

  forward(x: Tensor): Tensor | Tensor[] {
    const c = this.config;
    checkInput(c, x);
    this.beginForward();
    const n = c.features.length;
    let h = x;
    if (this.stem) {
      h = this.stem.forward(x);
      this.recordFrom(this.stem, 0);
    }
    const skips: Tensor[] = [];
    for (let s = 0; s < n; s++) {
      h = this.encoder.at(s).forward(h);
      const post = this.afterEncoderAt[s];
      if (post !== undefined) {
        h = this.afterEncoder.at(post).forward(h);
        this.recordFrom(this.afterEncoder.at(post), s);
      }
      this.record(`encoder.stage${s}`, h);
      skips.push(h);
    }
    const outs: Tensor[] = [];
    let head = 0;
    for (let s = n - 2, k = 0; s >= 0; s--, k++) {
      let skip = skips[s]!;
      const up = this.ups.at(k).forward(h, skip.shape.slice(2));
      const r = this.skipRefineAt[s];
      if (r !== undefined) {
        skip = this.skipRefine.at(r).forward(skip);
        this.recordFrom(this.skipRefine.at(r), s);
      }
      const g = this.gatesAt[s];
      if (g !== undefined) {
        const gate = this.gates.at(g);
        skip = gate.forward(skip, h);
        this.record(`attention.gate${s}`, gate.lastAlpha);
      }
      h = this.decoder.at(k).forward(torch.cat([up, skip], 1));
      this.record(`decoder.stage${s}`, h);
      if (s === 0 || c.deepSupervision) {
        const useHead = s === 0 || this.training;
        if (useHead) outs.unshift(this.heads.at(head).forward(h));
        head++;
      }
    }
    this.record('logits', outs[0]);
    return this.finish(outs);
  }

  private recordFrom(m: unknown, stage: number): void {
    if (explains(m)) for (const [name, t] of m.explain(stage)) this.record(name, t);
  }
}
