/**
 * nn.Module: a tree of modules owning parameters and buffers, with PyTorch's
 * naming (so state dicts line up with torch's), train/eval, state dicts and
 * forward hooks. Parameters and buffers are kept out of tidy() scopes.
 */
import { noGrad } from '../autograd.ts';
import { Tensor, type MemoryFormat } from '../tensor.ts';
import { keep } from '../scope.ts';

export type ForwardHook = (module: Module, inputs: unknown[], output: unknown) => void;

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, Tensor | null>();
  private readonly children = new Map<string, Module>();
  private hooks: ForwardHook[] | undefined;

  /** Registers a trainable tensor; it is kept alive and requires grad. */
  protected param(name: string, t: Tensor | null): Tensor {
    if (t) keep(t).requiresGrad_(true);
    this.params.set(name, t);
    return t as Tensor;
  }

  /** Registers state that is saved but not trained (running statistics). */
  protected buffer(name: string, t: Tensor | null): Tensor {
    if (t) keep(t);
    this.buffers.set(name, t);
    return t as Tensor;
  }

  protected module<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Re-points a registered parameter or buffer (used by loadStateDict on dtype changes). */
  protected replaceTensor(name: string, t: Tensor): void {
    if (this.params.has(name)) this.params.set(name, t);
    else if (this.buffers.has(name)) this.buffers.set(name, t);
    else throw new Error(`no parameter or buffer '${name}'`);
  }

  /**
   * Lays every 4D (channels_last) or 5D (channels_last_3d) parameter and
   * buffer out channels last, in place: the same tensors (an optimizer made
   * afterwards or before sees them), new strides. A convolution then takes
   * channels-last input without reordering its weight at every call.
   */
  toMemoryFormat(format: MemoryFormat): this {
    const rank = format === 'channels_last' ? 4 : format === 'channels_last_3d' ? 5 : 0;
    for (const [, m] of this.namedModules()) {
      for (const t of [...m.params.values(), ...m.buffers.values()]) {
        if (!t || (rank > 0 && t.ndim !== rank) || (rank === 0 && t.ndim < 4)) continue;
        const c = t.contiguous(format);
        if (c !== t) {
          t.setData_(c);
          c.dispose();
        }
      }
    }
    return this;
  }

  getTensor(name: string): Tensor | null {
    return this.params.get(name) ?? this.buffers.get(name) ?? null;
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.children) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.params) if (p) out.push([prefix ? `${prefix}.${n}` : n, p]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.buffers) if (b) out.push([prefix ? `${prefix}.${n}` : n, b]);
    for (const [n, m] of this.children) out.push(...m.namedBuffers(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Number of parameter elements (trainable only by default). */
  numParameters(trainableOnly = true): number {
    return this.parameters()
      .filter((p) => !trainableOnly || p.requiresGrad)
      .reduce((a, p) => a + p.numel, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Parameters and buffers by dotted name; the tensors are shared, not copies.
   * Ordered as torch's state_dict(): each module's parameters, then its
   * buffers, then its children in registration order.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const walk = (m: Module, prefix: string): void => {
      for (const [n, p] of m.params) if (p) out.set(prefix + n, p);
      for (const [n, b] of m.buffers) if (b) out.set(prefix + n, b);
      for (const [n, c] of m.children) walk(c, `${prefix}${n}.`);
    };
    walk(this, '');
    return out;
  }

  /**
   * Copies values in place. strict: every name must match both ways. Shapes
   * must match; dtypes are converted.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const src = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      throw new Error(
        `loadStateDict: ${missing.length ? `missing ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}` : ''}` +
          `${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${unexpected.slice(0, 8).join(', ')}` : ''}`,
      );
    }
    noGrad(() => {
      for (const [k, t] of own) {
        const v = src.get(k);
        if (!v) continue;
        if (v.shape.join(',') !== t.shape.join(',')) {
          throw new Error(`loadStateDict: '${k}' has shape [${v.shape.join(', ')}], the model expects [${t.shape.join(', ')}]`);
        }
        t.copy_(v);
      }
    });
    return { missing, unexpected };
  }

  /** Calls hook(module, inputs, output) after every forward; returns a remover. */
  registerForwardHook(hook: ForwardHook): () => void {
    if (!this.hooks) {
      this.hooks = [];
      const self = this as unknown as { forward: (...a: unknown[]) => unknown };
      const original = self.forward.bind(this);
      self.forward = (...args: unknown[]) => {
        const out = original(...args);
        for (const h of this.hooks!) h(this, args, out);
        return out;
      };
    }
    this.hooks.push(hook);
    return () => {
      this.hooks = this.hooks!.filter((h) => h !== hook);
    };
  }

  /** Frees every parameter and buffer of the tree. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A module with one tensor in and one out: what Sequential chains. */
export abstract class UnaryModule extends Module {
  abstract forward(x: Tensor): Tensor;
}
