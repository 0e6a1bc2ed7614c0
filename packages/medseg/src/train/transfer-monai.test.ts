/**
 * The 'monai' weight mapping: a PyTorch network with MONAI DynUNet's module
 * structure and state-dict names (built here from its documented layout,
 * since MONAI itself is not installed), random weights, saved as .pth,
 * converted by scripts/pth-to-safetensors.py, loaded into medseg's unet with
 * the same filters, kernels and strides: the logits on a real case match
 * PyTorch's, and every medseg tensor comes from the checkpoint.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import { repoRoot } from '../testing/data.ts';
import { hippocampusCrop, smallConfig } from '../testing/models.ts';
import { runPython } from '../testing/python.ts';
import { initializeWeights } from './transfer.ts';
import { WEIGHT_MAPPINGS } from './weight-mappings.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medseg-monai-'));

// DynUNet (res_block=False): UnetBasicBlock = conv1 -> norm1 -> LeakyReLU(0.01)
// -> conv2 -> norm2 -> LeakyReLU, each conv a MONAI Convolution (a Sequential
// holding `conv`) without bias, padding (k - s + 1) // 2; UnetUpBlock =
// transp_conv (kernel = stride) -> cat(up, skip) -> conv_block; UnetOutBlock =
// a 1x1 conv with bias. The blocks are held once by name and again under
// skip_layers (the recursive skip structure that runs them).
const DYNUNET = `
import sys, json, torch, torch.nn as nn
cfg = json.loads(sys.argv[1]); torch.manual_seed(0)
F, K, S, NC, DSN = cfg["features"], cfg["kernel"], cfg["strides"], 2, cfg["deep_supr_num"]
class Convolution(nn.Sequential):
    def __init__(s, m): super().__init__(); s.add_module("conv", m)
class Basic(nn.Module):
    def __init__(s, i, o, st):
        super().__init__(); p = (K - st + 1) // 2
        s.conv1 = Convolution(nn.Conv3d(i, o, K, st, p, bias=False)); s.conv2 = Convolution(nn.Conv3d(o, o, K, 1, (K - 1 + 1) // 2, bias=False))
        s.lrelu = nn.LeakyReLU(0.01); s.norm1 = nn.InstanceNorm3d(o, affine=True); s.norm2 = nn.InstanceNorm3d(o, affine=True)
    def forward(s, x): return s.lrelu(s.norm2(s.conv2(s.lrelu(s.norm1(s.conv1(x))))))
class Up(nn.Module):
    def __init__(s, i, o, st):
        super().__init__(); s.transp_conv = Convolution(nn.ConvTranspose3d(i, o, st, st, bias=cfg["trans_bias"])); s.conv_block = Basic(2 * o, o, 1)
    def forward(s, x, skip): return s.conv_block(torch.cat((s.transp_conv(x), skip), 1))
class Out(nn.Module):
    def __init__(s, i): super().__init__(); s.conv = Convolution(nn.Conv3d(i, NC, 1, 1, 0, bias=True))
    def forward(s, x): return s.conv(x)
class SkipLayer(nn.Module):
    def __init__(s, down, up, nxt): super().__init__(); s.downsample = down; s.upsample = up; s.next_layer = nxt
    def forward(s, x): d = s.downsample(x); return s.upsample(s.next_layer(d), d)
class DynUNet(nn.Module):
    def __init__(s):
        super().__init__(); n = len(F); c = [1] + F
        s.input_block = Basic(1, F[0], S[0])
        s.downsamples = nn.ModuleList([Basic(F[i - 1], F[i], S[i]) for i in range(1, n - 1)])
        s.bottleneck = Basic(F[-2], F[-1], S[-1])
        s.upsamples = nn.ModuleList([Up(F[i], F[i - 1], S[i]) for i in range(n - 1, 0, -1)])
        s.output_block = Out(F[0])
        s.deep_supervision_heads = nn.ModuleList([Out(F[i + 1]) for i in range(DSN)])
        downs = [s.input_block] + list(s.downsamples); ups = list(s.upsamples)[::-1]
        layer = s.bottleneck
        for i in range(n - 2, -1, -1): layer = SkipLayer(downs[i], ups[i], layer)
        s.skip_layers = layer
    def forward(s, x): return s.output_block(s.skip_layers(x))
net = DynUNet().eval()
with torch.no_grad():
    for n_, p in net.named_parameters(): p.copy_(torch.randn_like(p) * (0.3 if n_.endswith("weight") else 0.5))
    x = torch.tensor(cfg["image"], dtype=torch.float32).reshape(cfg["shape"])
    y = net(x)
names = list(net.state_dict().keys())
torch.save({"state_dict": net.state_dict()}, cfg["pth"])
print(json.dumps({"logits": y.flatten().tolist(), "names": names}))
`;

test("MONAI DynUNet weights, converted by scripts/pth-to-safetensors.py, give medseg's unet the same logits on a real case", async () => {
  const hip = await hippocampusCrop([16, 24, 16]);
  const cfg = smallConfig('unet', 3, { deepSupervision: true, features: [4, 8, 16, 16] });
  const pth = join(tmp, 'dynunet.pth');
  const st = join(tmp, 'dynunet.safetensors');
  const image = Array.from(hip.image.toTypedArray() as Float32Array);
  const py = JSON.stringify({
    features: cfg.features,
    kernel: 3,
    strides: cfg.strides.map((s) => s[0]),
    image,
    shape: hip.image.shape,
    pth,
    trans_bias: true,
    deep_supr_num: 2,
  });
  const ref = JSON.parse(runPython(['-c', DYNUNET, py])) as { logits: number[]; names: string[] };
  assert.ok(ref.names.some((n) => n.startsWith('skip_layers.')) && ref.names.includes('bottleneck.conv1.conv.weight'));
  runPython([join(repoRoot, 'scripts', 'pth-to-safetensors.py'), pth, st]);
  const net = createNetwork(cfg).eval();
  const r = initializeWeights(net, { source: st, from: 'monai' });
  assert.deepEqual(r.untouched, [], 'every medseg tensor came from the checkpoint');
  assert.ok(r.skipped.length > 0 && r.skipped.every((s) => s.name.startsWith('skip_layers.')), JSON.stringify(r.skipped.slice(0, 3)));
  const out = torch.tidy(() => Array.from(torch.noGrad(() => net.forward(hip.image) as torch.Tensor).toTypedArray() as Float32Array));
  assert.equal(out.length, ref.logits.length);
  const diff = Math.max(...out.map((v, i) => Math.abs(v - ref.logits[i]!)));
  assert.ok(diff < 1e-3, `max |medseg - DynUNet| = ${diff}`);
  net.dispose();

  // Without deep supervision only the finest head is taken; the deep-supervision heads are reported as left out.
  const plain = createNetwork({ ...cfg, deepSupervision: false });
  const rp = initializeWeights(plain, { source: st, from: 'monai' });
  assert.deepEqual(rp.untouched, []);
  assert.equal(rp.skipped.filter((s) => s.name.startsWith('deep_supervision_heads.')).length, 4);
  plain.dispose();

  // DynUNet weights fit only medseg's unet.
  const other = createNetwork(smallConfig('resunet', 3));
  assert.throws(() => initializeWeights(other, { source: st, from: 'monai' }), /MONAI DynUNet weights fit medseg's unet/);
  other.dispose();
});

test('the monai mapping names: residual projections and conv biases are left out with the reason', () => {
  const map = WEIGHT_MAPPINGS.monai;
  const o = { deepSupervision: true, decoderStages: 4 };
  assert.deepEqual(map('downsamples.1.conv2.conv.weight', o), { to: 'encoder.2.convs.1.conv.weight' });
  assert.deepEqual(map('bottleneck.norm1.bias', o), { to: 'encoder.4.convs.0.norm.bias' });
  assert.deepEqual(map('upsamples.3.conv_block.norm2.weight', o), { to: 'decoder.3.convs.1.norm.weight' });
  assert.deepEqual(map('output_block.conv.conv.bias', o), { to: 'seg_heads.3.bias' });
  assert.deepEqual(map('deep_supervision_heads.0.conv.conv.weight', o), { to: 'seg_heads.2.weight' });
  assert.deepEqual(map('output_block.conv.conv.bias', { ...o, deepSupervision: false }), { to: 'seg_heads.0.bias' });
  assert.match((map('input_block.conv3.conv.weight', o) as { skip: string }).skip, /residual/);
  assert.match((map('input_block.conv1.conv.bias', o) as { skip: string }).skip, /instance norm/);
  assert.match((map('skip_layers.next_layer.downsample.conv1.conv.weight', o) as { skip: string }).skip, /duplicate/);
});
