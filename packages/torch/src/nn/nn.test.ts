/**
 * nn layers against torch.nn: each of our modules' weights goes into the torch
 * module of the same architecture through its state dict, and both forwards
 * must agree (BatchNorm's running statistics too). Then Module behaviour:
 * state-dict names and parameter counts equal torch's, strict loading errors,
 * train/eval, forward hooks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../index.ts';
import type { Tensor } from '../index.ts';
import { randnT, uniformT } from '../testing/inputs.ts';
import { RefSuite, type Ours } from '../testing/pyref.ts';

const nn = torch.nn;
const s = new RefSuite('nn: ');

torch.manualSeed(1234);

/** The module's state as Python inputs, and the dict literal that names them as torch does. */
function stateOf(m: torch.nn.Module): { inputs: Record<string, Tensor>; dict: string } {
  const inputs: Record<string, Tensor> = {};
  const entries: string[] = [];
  [...m.stateDict()].forEach(([k, t], i) => {
    inputs[`sd_${i}`] = t.clone().keep();
    entries.push(`'${k}': sd_${i}`);
  });
  return { inputs, dict: `{${entries.join(', ')}}` };
}

/** Registers a case: torch builds `ctor`, loads our state strictly, runs `forward` (Python, `m` and inputs bound). */
function layerCase(name: string, m: torch.nn.Module, ctor: string, forward: string, inputs: Record<string, Tensor>, ours: () => Ours, prelude = ''): void {
  const st = stateOf(m);
  const code = `${prelude}
m = ${ctor}
m.load_state_dict(${st.dict}, strict=True)
${forward}`;
  s.check(name, { ...inputs, ...st.inputs }, code, ours);
}

const x1 = randnT([2, 3, 10], 1);
const x2 = randnT([2, 3, 9, 8], 2);
const x3 = randnT([1, 3, 5, 6, 4], 3);
const xb = randnT([2, 3, 9, 8], 4, { scale: 2, shift: 0.5 });

// ---- convolutions ------------------------------------------------------------------
{
  const c1 = new nn.Conv1d(3, 4, 3, { stride: 2, padding: 1 });
  layerCase('Conv1d', c1, 'nn.Conv1d(3, 4, 3, stride=2, padding=1)', 'out = m(x1)', { x1 }, () => c1.forward(x1));
  const c2 = new nn.Conv2d(3, 6, [3, 2], { padding: [1, 0], dilation: [1, 2], groups: 3, bias: false });
  layerCase(
    'Conv2d (groups, dilation, no bias)',
    c2,
    'nn.Conv2d(3, 6, (3, 2), padding=(1, 0), dilation=(1, 2), groups=3, bias=False)',
    'out = m(x2)',
    { x2 },
    () => c2.forward(x2),
  );
  const c3 = new nn.Conv3d(3, 2, 3, { stride: [1, 2, 2], padding: 1 });
  layerCase('Conv3d', c3, 'nn.Conv3d(3, 2, 3, stride=(1, 2, 2), padding=1)', 'out = m(x3)', { x3 }, () => c3.forward(x3));
  const t1 = new nn.ConvTranspose1d(3, 2, 4, { stride: 2, padding: 1 });
  layerCase('ConvTranspose1d', t1, 'nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1)', 'out = m(x1)', { x1 }, () => t1.forward(x1));
  const t2 = new nn.ConvTranspose2d(3, 4, 2, { stride: 2, outputPadding: 1, padding: 1 });
  layerCase('ConvTranspose2d', t2, 'nn.ConvTranspose2d(3, 4, 2, stride=2, padding=1, output_padding=1)', 'out = m(x2)', { x2 }, () => t2.forward(x2));
  const t3 = new nn.ConvTranspose3d(3, 2, [2, 2, 1], { stride: [2, 2, 1] });
  layerCase('ConvTranspose3d', t3, 'nn.ConvTranspose3d(3, 2, (2, 2, 1), stride=(2, 2, 1))', 'out = m(x3)', { x3 }, () => t3.forward(x3));
}

// ---- normalisation --------------------------------------------------------------------
{
  const bn = new nn.BatchNorm(3, { momentum: 0.2 });
  torch.noGrad(() => {
    bn.weight!.copy_(uniformT([3], 10, 0.5, 1.5));
    bn.bias!.copy_(randnT([3], 11));
  });
  layerCase(
    'BatchNorm2d train (running stats update over two steps) then eval',
    bn,
    'nn.BatchNorm2d(3, momentum=0.2)',
    `m.train(); y1 = m(xb); y2 = m(x2)
m.eval(); y3 = m(x2)
out = (y1, y2, y3, m.running_mean, m.running_var, m.num_batches_tracked)`,
    { xb, x2 },
    () => {
      bn.train();
      const y1 = bn.forward(xb);
      const y2 = bn.forward(x2);
      bn.eval();
      const y3 = bn.forward(x2);
      return [y1, y2, y3, bn.runningMean!, bn.runningVar!, bn.numBatchesTracked!];
    },
  );
  const bn1 = new nn.BatchNorm(3, { affine: false, eps: 1e-3 });
  layerCase(
    'BatchNorm1d without affine',
    bn1,
    'nn.BatchNorm1d(3, affine=False, eps=1e-3)',
    'm.train(); y = m(x1); out = (y, m.running_mean, m.running_var)',
    { x1 },
    () => {
      bn1.train();
      return [bn1.forward(x1), bn1.runningMean!, bn1.runningVar!];
    },
  );
  const bn3 = new nn.BatchNorm(3);
  layerCase('BatchNorm3d', bn3, 'nn.BatchNorm3d(3)', 'm.train(); y = m(x3); m.eval(); out = (y, m(x3), m.running_var)', { x3 }, () => {
    bn3.train();
    const y = bn3.forward(x3);
    bn3.eval();
    return [y, bn3.forward(x3), bn3.runningVar!];
  });
  const inorm = new nn.InstanceNorm(3, { affine: true });
  torch.noGrad(() => inorm.weight!.copy_(uniformT([3], 12, 0.5, 1.5)));
  layerCase('InstanceNorm2d (affine)', inorm, 'nn.InstanceNorm2d(3, affine=True)', 'out = m(xb)', { xb }, () => inorm.forward(xb));
  const in3 = new nn.InstanceNorm(3);
  layerCase('InstanceNorm3d', in3, 'nn.InstanceNorm3d(3)', 'out = m(x3)', { x3 }, () => in3.forward(x3));
  const x6 = randnT([2, 6, 4, 5], 13);
  const gn = new nn.GroupNorm(3, 6);
  torch.noGrad(() => gn.bias!.copy_(randnT([6], 14)));
  layerCase('GroupNorm', gn, 'nn.GroupNorm(3, 6)', 'out = m(x6)', { x6 }, () => gn.forward(x6));
  const ln = new nn.LayerNorm([9, 8]);
  torch.noGrad(() => ln.weight!.copy_(randnT([9, 8], 15)));
  layerCase('LayerNorm', ln, 'nn.LayerNorm([9, 8])', 'out = m(x2)', { x2 }, () => ln.forward(x2));
}

// ---- linear, embedding, dropout, attention -----------------------------------------------
{
  const lin = new nn.Linear(8, 5);
  layerCase('Linear', lin, 'nn.Linear(8, 5)', 'out = m(x2)', { x2 }, () => lin.forward(x2));
  const linNb = new nn.Linear(8, 5, false);
  layerCase('Linear without bias', linNb, 'nn.Linear(8, 5, bias=False)', 'out = m(x2)', { x2 }, () => linNb.forward(x2));
  const emb = new nn.Embedding(7, 4);
  const ids = torch.tensor([0, 3, 6, 2, 2, 5], [2, 3], { dtype: 'int64' });
  layerCase('Embedding', emb, 'nn.Embedding(7, 4)', 'out = m(ids)', { ids }, () => emb.forward(ids));
  const drop = new nn.Dropout(0.5);
  layerCase('Dropout in eval is the identity', drop, 'nn.Dropout(0.5)', 'm.eval(); out = m(x2)', { x2 }, () => drop.eval().forward(x2));

  const E = 8;
  const q = randnT([2, 5, E], 20);
  const kv = randnT([2, 6, E], 21);
  const amask = randnT([5, 6], 22);
  const bmask = torch.tidy(() => uniformT([5, 6], 23).gt(0.3).logicalOr(torch.arange(6).eq(0).unsqueeze(0))).keep();
  const mha = new nn.MultiheadAttention(E, 2);
  // Non-zero biases, so that a bias mix-up cannot hide.
  torch.noGrad(() => {
    mha.inProjBias!.copy_(randnT([3 * E], 24, { scale: 0.3 }));
    mha.outProj.bias!.copy_(randnT([E], 25, { scale: 0.3 }));
  });
  const r = (o: { output: Tensor; weights: Tensor }) => [o.output, o.weights];
  layerCase(
    'MultiheadAttention (self, cross, additive and boolean masks)',
    mha,
    'nn.MultiheadAttention(8, 2, batch_first=True)',
    // torch's boolean attn_mask marks positions NOT to attend; ours marks those that may.
    'm.eval(); out = (m(q, q, q), m(q, kv, kv), m(q, kv, kv, attn_mask=amask), m(q, kv, kv, attn_mask=~bmask))',
    { q, kv, amask, bmask },
    () => {
      mha.eval();
      return [r(mha.forward(q)), r(mha.forward(q, kv, kv)), r(mha.forward(q, kv, kv, { attnMask: amask })), r(mha.forward(q, kv, kv, { attnMask: bmask }))];
    },
  );
  const mhaNb = new nn.MultiheadAttention(E, 4, { bias: false });
  layerCase(
    'MultiheadAttention without bias, 4 heads',
    mhaNb,
    'nn.MultiheadAttention(8, 4, bias=False, batch_first=True)',
    'out = m(q, kv, kv)',
    { q, kv },
    () => r(mhaNb.forward(q, kv, kv)),
  );
}

// ---- state dict names and parameter counts of a composite network ---------------------------
class Net extends nn.Module {
  readonly features = this.module(
    'features',
    new nn.Sequential(new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.BatchNorm(8), new nn.ReLU(), new nn.Conv2d(8, 8, 3, { bias: false })),
  );
  readonly attn = this.module('attn', new nn.MultiheadAttention(8, 2));
  readonly norm = this.module('norm', new nn.LayerNorm(8));
  readonly head = this.module('head', new nn.Linear(8, 4));
  readonly drop = this.module('drop', new nn.Dropout(0.3));
  forward(x: Tensor): Tensor {
    const f = this.features.forward(x); // [N, 8, H, W]
    const tokens = f.flatten(2).transpose(1, 2); // [N, HW, 8]
    const a = this.attn.forward(tokens).output;
    return this.head.forward(this.drop.forward(this.norm.forward(a.mean(1))));
  }
}
const TORCH_NET = `class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, bias=False))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 4)
        self.drop = nn.Dropout(0.3)
    def forward(self, x):
        f = self.features(x)
        t = f.flatten(2).transpose(1, 2)
        a = self.attn(t, t, t)[0]
        return self.head(self.drop(self.norm(a.mean(1))))
`;
const net = new Net();
s.check(
  'composite network: state-dict names (in torch order) and shapes, parameter count',
  {},
  `${TORCH_NET}
m = Net()
sd = m.state_dict()
names = list(sd.keys())
out = (names, [str(list(sd[k].shape)) for k in names], sum(p.numel() for p in m.parameters()))`,
  () => {
    const names = [...net.stateDict().keys()];
    return [names, names.map((k) => JSON.stringify(net.stateDict().get(k)!.shape).replace(/,/g, ', ')), net.numParameters()];
  },
);
{
  const xn = randnT([2, 3, 6, 6], 30);
  layerCase('composite network forward (eval)', net, 'Net()', 'm.eval(); out = m(xn)', { xn }, () => net.eval().forward(xn), TORCH_NET);
}

s.run();

// ---- Module behaviour without a reference -------------------------------------------------------
test('nn: loadStateDict strict errors name missing, unexpected and mismatched entries', () => {
  torch.tidy(() => {
    const a = new nn.Sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm(3));
    const sd = new Map(a.stateDict());
    const missing = new Map(sd);
    missing.delete('1.running_var');
    assert.throws(() => a.loadStateDict(missing), /missing 1\.running_var/);
    const extra = new Map(sd);
    extra.set('2.weight', torch.zeros([3]));
    assert.throws(() => a.loadStateDict(extra), /unexpected 2\.weight/);
    const wrong = new Map(sd);
    wrong.set('0.weight', torch.zeros([3, 2, 5, 5]));
    assert.throws(() => a.loadStateDict(wrong), /'0\.weight' has shape \[3, 2, 5, 5\], the model expects \[3, 2, 3, 3\]/);
    // Non-strict: loads what matches and reports the rest.
    const b = new nn.Sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm(3));
    const r = b.loadStateDict(extra, false);
    assert.deepEqual(r, { missing: [], unexpected: ['2.weight'] });
    assert.ok(b.stateDict().get('0.weight')!.equal(a.stateDict().get('0.weight')!));
    // Loading copies values: later changes to the source do not leak into the model.
    torch.noGrad(() => a.stateDict().get('0.bias')!.add_(1));
    assert.ok(!b.stateDict().get('0.bias')!.equal(a.stateDict().get('0.bias')!));
    a.dispose();
    b.dispose();
  });
});

test('nn: train/eval propagate to every submodule and change Dropout and BatchNorm behaviour', () => {
  torch.tidy(() => {
    const m = new nn.Sequential(new nn.BatchNorm(2), new nn.Dropout(0.5));
    assert.ok(m.namedModules().every(([, c]) => c.training));
    m.eval();
    assert.ok(m.namedModules().every(([, c]) => !c.training));
    const x = randnT([4, 2, 3, 3], 40, { shift: 3 });
    // eval: running stats (0 mean, 1 var) -> y = x / sqrt(1 + eps); dropout is off.
    const y = m.forward(x);
    assert.ok(y.allclose(x.div(Math.sqrt(1 + 1e-5)), 1e-5, 1e-6));
    m.train();
    const before = (m.layers[0] as torch.nn.BatchNorm).runningMean!.clone();
    const z = m.forward(x);
    assert.ok(!(m.layers[0] as torch.nn.BatchNorm).runningMean!.equal(before), 'train updates running stats');
    const zeroFrac = z.eq(0).float().mean().item();
    assert.ok(zeroFrac > 0.3 && zeroFrac < 0.7, `dropout active in train: ${zeroFrac}`);
    // Monte-Carlo dropout stays active in eval.
    m.eval();
    (m.layers[1] as torch.nn.Dropout).mcDropout = true;
    assert.ok(m.forward(x).eq(0).float().mean().item() > 0.3);
    m.dispose();
  });
});

test('nn: forward hooks see inputs and output, fire per call, and can be removed', () => {
  torch.tidy(() => {
    const conv = new nn.Conv2d(1, 2, 3, { padding: 1 });
    const seq = new nn.Sequential(conv, new nn.ReLU());
    const seen: { module: torch.nn.Module; inShape: number[]; outShape: number[] }[] = [];
    const remove = conv.registerForwardHook((module, inputs, output) => {
      seen.push({ module, inShape: (inputs[0] as Tensor).shape, outShape: (output as Tensor).shape });
    });
    const x = randnT([1, 1, 4, 5], 41);
    seq.forward(x);
    seq.forward(x);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.module, conv);
    assert.deepEqual(seen[0]!.inShape, [1, 1, 4, 5]);
    assert.deepEqual(seen[0]!.outShape, [1, 2, 4, 5]);
    remove();
    seq.forward(x);
    assert.equal(seen.length, 2);
    seq.dispose();
  });
});

test('nn: parameters require grad, buffers do not; numParameters counts trainable elements', () => {
  torch.tidy(() => {
    const bn = new nn.BatchNorm(5);
    assert.deepEqual(
      bn.namedParameters().map(([n]) => n),
      ['weight', 'bias'],
    );
    assert.deepEqual(
      bn.namedBuffers().map(([n]) => n),
      ['running_mean', 'running_var', 'num_batches_tracked'],
    );
    assert.ok(bn.parameters().every((p) => p.requiresGrad));
    assert.ok(bn.namedBuffers().every(([, b]) => !b.requiresGrad));
    assert.equal(bn.numParameters(), 10);
    bn.weight!.requiresGrad_(false);
    assert.equal(bn.numParameters(), 5);
    assert.equal(bn.numParameters(false), 10);
    bn.dispose();
  });
});

test('setData_ to a smaller tensor (a pruned parameter): the same handle takes its shape and values and stays a parameter', () => {
  const conv = new nn.Conv2d(4, 6, 3, { bias: false });
  const w = conv.weight;
  const kept = torch.tidy(() => w.indexSelect(0, torch.tensor([0, 2, 5], [3], { dtype: 'int64' })).contiguous());
  const want = kept.toFloat32Array();
  assert.deepEqual(w.shape, [6, 4, 3, 3]);
  w.setData_(kept);
  kept.dispose();
  assert.equal(conv.weight, w);
  assert.deepEqual(w.shape, [3, 4, 3, 3]);
  assert.deepEqual(w.toFloat32Array(), want);
  assert.ok(w.requiresGrad);
  torch.tidy(() => assert.deepEqual(conv.forward(torch.randn([1, 4, 5, 5])).shape, [1, 3, 3, 3]));
  conv.dispose();
});
