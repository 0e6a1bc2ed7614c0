/**
 * Transfer learning: medseg -> medseg round trips (all, encoder only, another
 * class count), nnU-Net's PlainConvUNet names through the converter script
 * and the 'nnunet' mapping (the same logits as a PyTorch network with
 * nnU-Net's structure and names on a real case), a frozen encoder, and typed
 * errors.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { encoderStateNames } from '../models/encoder-parts.ts';
import { saveWeights } from '../plan/model-weights.ts';
import { repoRoot } from '../testing/data.ts';
import { hippocampusCrop, smallConfig } from '../testing/models.ts';
import { runPython } from '../testing/python.ts';
import { makeOptimizer, trainingStep } from './step.ts';
import { initializeWeights } from './transfer.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-transfer-'));

function snapshot(net: { stateDict(): Map<string, torch.Tensor> }): Map<string, Float32Array> {
  return new Map([...net.stateDict()].map(([k, t]) => [k, Float32Array.from(t.toTypedArray() as Float32Array)]));
}

test('medseg weights: all, encoder only, and a network with another class count (heads left out)', () => {
  torch.manualSeed(1);
  const source = createNetwork(smallConfig('attention-unet', 3));
  const file = join(tmp, 'source.safetensors');
  saveWeights(file, source.stateDict());
  const want = snapshot(source);

  torch.manualSeed(2);
  const all = createNetwork(smallConfig('attention-unet', 3));
  const r = initializeWeights(all, { source: file });
  assert.equal(r.untouched.length, 0);
  for (const [k, v] of snapshot(all)) assert.deepEqual(v, want.get(k), k);

  torch.manualSeed(2);
  const enc = createNetwork(smallConfig('attention-unet', 3));
  const before = snapshot(enc);
  const encoder = encoderStateNames(enc);
  assert.ok(encoder.size > 0 && [...encoder].every((n) => n.startsWith('encoder.')));
  const re = initializeWeights(enc, { source: file, part: 'encoder' });
  assert.deepEqual(new Set(re.loaded), encoder);
  for (const [k, v] of snapshot(enc)) assert.deepEqual(v, encoder.has(k) ? want.get(k) : before.get(k), k);

  torch.manualSeed(3);
  const three = createNetwork(smallConfig('attention-unet', 3, { numClasses: 3 }));
  const r3 = initializeWeights(three, { source: file });
  assert.ok(r3.untouched.length > 0 && r3.untouched.every((n) => n.startsWith('seg_heads.')), r3.untouched.join(', '));
  assert.ok(
    r3.skipped.every((s) => /^seg_heads\..*shape \[2[,\]]/.test(`${s.name} ${s.reason}`)),
    JSON.stringify(r3.skipped),
  );

  // UNet++ keeps its encoder in column 0 of a flat node list.
  const pp = createNetwork(smallConfig('unet++', 3));
  const ppEnc = encoderStateNames(pp);
  assert.ok(ppEnc.size > 0 && ppEnc.size < pp.stateDict().size);
  for (const n of [source, all, enc, three, pp]) n.dispose();
});

test('a frozen encoder (learning-rate scale 0) does not move in training; the decoder does', async () => {
  torch.manualSeed(4);
  const net = createNetwork(smallConfig('unet', 3, { numClasses: 3 }));
  const encoder = encoderStateNames(net);
  const before = snapshot(net);
  const opt = makeOptimizer(net, { optimizer: 'adamw', lr: 1e-2, weightDecay: 0.01, momentum: 0 }, new Map([...encoder].map((n) => [n, 0])));
  assert.deepEqual(
    opt.groups.map((g) => g.lr),
    [1e-2, 0],
  );
  const hip = await hippocampusCrop([16, 24, 16]);
  net.train();
  for (let i = 0; i < 3; i++) trainingStep(net, opt, hip.image, hip.label, { loss: { name: 'dice_ce', batchDice: false }, gradClip: 12 });
  for (const [k, v] of snapshot(net)) {
    const same = v.every((x, i) => x === before.get(k)![i]);
    if (encoder.has(k)) assert.ok(same, `${k} moved though frozen`);
    // (The coarsest deep-supervision head has loss weight 0, as in nnU-Net, so seg_heads are not checked.)
    else if (k.startsWith('decoder.') && k.endsWith('.weight')) assert.ok(!same, `${k} did not train`);
  }
  opt.dispose();
  net.dispose();
});

// A network with nnU-Net v2's PlainConvUNet structure and state-dict names
// (conv with bias -> InstanceNorm(affine) -> LeakyReLU(0.01) per unit, the
// first unit of a stage strided; transposed-conv up, cat(up, skip), the last
// seg layer as output; duplicates under all_modules and decoder.encoder),
// random weights including conv biases, saved as .pth.
const NNUNET = `
import sys, json, torch, torch.nn as nn
cfg = json.loads(sys.argv[1]); torch.manual_seed(0)
F, K, S = cfg["features"], cfg["kernel"], cfg["strides"]
class Unit(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.conv = nn.Conv3d(i, o, K, st, K // 2, bias=True); s.norm = nn.InstanceNorm3d(o, eps=1e-5, affine=True); s.nonlin = nn.LeakyReLU(0.01)
        s.all_modules = nn.Sequential(s.conv, s.norm, s.nonlin)
    def forward(s, x): return s.all_modules(x)
class Stacked(nn.Module):
    def __init__(s, i, o, st): super().__init__(); s.convs = nn.Sequential(Unit(i, o, st), Unit(o, o, 1))
    def forward(s, x): return s.convs(x)
class Enc(nn.Module):
    def __init__(s):
        super().__init__(); c = [1] + F
        s.stages = nn.Sequential(*[nn.Sequential(Stacked(c[i], c[i + 1], S[i])) for i in range(len(F))])
    def forward(s, x):
        out = []
        for st in s.stages: x = st(x); out.append(x)
        return out
class Dec(nn.Module):
    def __init__(s, enc):
        super().__init__(); s.encoder = enc; n = len(F)
        s.transpconvs = nn.ModuleList([nn.ConvTranspose3d(F[-s_], F[-(s_ + 1)], S[-s_], S[-s_], bias=True) for s_ in range(1, n)])
        s.stages = nn.ModuleList([Stacked(2 * F[-(s_ + 1)], F[-(s_ + 1)], 1) for s_ in range(1, n)])
        s.seg_layers = nn.ModuleList([nn.Conv3d(F[-(s_ + 1)], 2, 1, 1, 0, bias=True) for s_ in range(1, n)])
    def forward(s, skips):
        x = skips[-1]
        for i in range(len(s.stages)):
            x = s.stages[i](torch.cat((s.transpconvs[i](x), skips[-(i + 2)]), 1))
        return s.seg_layers[-1](x)
class Net(nn.Module):
    def __init__(s): super().__init__(); s.encoder = Enc(); s.decoder = Dec(s.encoder)
    def forward(s, x): return s.decoder(s.encoder(x))
net = Net().eval()
with torch.no_grad():
    for n, p in net.named_parameters(): p.copy_(torch.randn_like(p) * (0.3 if n.endswith("weight") else 0.5))
    x = torch.tensor(cfg["image"], dtype=torch.float32).reshape(cfg["shape"])
    y = net(x)
torch.save({"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer"}, cfg["pth"])
print(json.dumps(y.flatten().tolist()))
`;

test("nnU-Net PlainConvUNet weights, converted by scripts/pth-to-safetensors.py, give medseg's unet the same logits on a real case", async () => {
  const hip = await hippocampusCrop([16, 24, 16]);
  const cfg = smallConfig('unet', 3, { deepSupervision: false, features: [4, 8, 16] });
  const pth = join(tmp, 'checkpoint_final.pth');
  const st = join(tmp, 'nnunet.safetensors');
  const image = Array.from(hip.image.toTypedArray() as Float32Array);
  const ref = JSON.parse(
    runPython(['-c', NNUNET, JSON.stringify({ features: cfg.features, kernel: 3, strides: cfg.strides.map((s) => s[0]), image, shape: hip.image.shape, pth })]),
  ) as number[];
  runPython([join(repoRoot, 'scripts', 'pth-to-safetensors.py'), pth, st]);
  const net = createNetwork(cfg).eval();
  const r = initializeWeights(net, { source: st, from: 'nnunet' });
  assert.deepEqual(r.untouched, [], 'every medseg tensor came from the checkpoint');
  assert.ok(r.skipped.some((s) => s.reason.includes('duplicate')) && r.skipped.some((s) => s.reason.includes('conv bias before instance norm')));
  assert.ok(
    r.skipped.every((s) => !s.reason.includes('not part of')),
    JSON.stringify(r.skipped.filter((s) => s.reason.includes('not part of'))),
  );
  const out = torch.tidy(() => Array.from(torch.noGrad(() => net.forward(hip.image) as torch.Tensor).toTypedArray() as Float32Array));
  assert.equal(out.length, ref.length);
  const diff = Math.max(...out.map((v, i) => Math.abs(v - ref[i]!)));
  assert.ok(diff < 1e-3, `max |medseg - nnU-Net| = ${diff}`);
  net.dispose();

  // nnU-Net weights fit only the unet; a file with nothing that fits, or no file, is a typed error.
  const other = createNetwork(smallConfig('resunet', 3));
  assert.throws(() => initializeWeights(other, { source: st, from: 'nnunet' }), /fit medseg's unet/);
  assert.throws(
    () => initializeWeights(other, { source: st }),
    (e: Error & { code?: string }) => e.code === 'BAD_DATA' && /none of its \d+ tensors fits/.test(e.message),
  );
  assert.throws(
    () => initializeWeights(other, { source: join(tmp, 'nope.safetensors') }),
    (e: Error & { code?: string }) => e.code === 'NOT_FOUND',
  );
  writeFileSync(join(tmp, 'garbage.safetensors'), 'not weights');
  assert.throws(
    () => initializeWeights(other, { source: join(tmp, 'garbage.safetensors') }),
    (e: Error & { code?: string }) => e.code === 'TRUNCATED' || e.code === 'CORRUPT',
  );
  other.dispose();
});
