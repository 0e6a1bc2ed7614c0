/**
 * The classifiers: 2D and 3D logits of the right shape from each registered
 * architecture, gradients reaching every parameter, the ResNet-18 layout's
 * parameter count equal to torchvision's ResNet-18 with MedMNIST's 3x3
 * one-channel stem and a 2-class head, and the Grad-CAM layer a feature map.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { classifierConfig, createClassifier, listClassifiers } from './classifier-registry.ts';

test('classifiers: every registered architecture gives [N, K] logits in 2D and 3D and trains end to end', () => {
  assert.deepEqual(
    listClassifiers().map((c) => c.name),
    ['resnet18', 'hybridnet', 'vit'],
  );
  for (const { name } of listClassifiers()) {
    for (const size of [
      [28, 28],
      [8, 16, 16],
    ]) {
      torch.tidy(() => {
        const net = createClassifier(classifierConfig(name, size, { width: 8, numClasses: 3, extra: { depth: 1, patch: 4 } }));
        const x = torch.randn([2, 1, ...size]);
        const logits = net.forward(x);
        assert.deepEqual(logits.shape, [2, 3], `${name} ${size}`);
        torch.F.crossEntropy(logits, torch.tensor([0, 2], [2], { dtype: 'int64' })).backward();
        const missing = net.namedParameters().filter(([, p]) => !p.grad || p.grad.abs().sum().item() === 0);
        assert.deepEqual(
          missing.map(([n]) => n),
          [],
          `${name} ${size}: parameters without gradient`,
        );
        let cam: number[] | null = null;
        const layer = net.namedModules().find(([n]) => n === net.camLayer)![1];
        const remove = layer.registerForwardHook((_m, _i, out) => void (cam = (out as torch.Tensor).shape));
        net.forward(x);
        remove();
        assert.equal(cam!.length, size.length + 2, `${name}: Grad-CAM layer ${net.camLayer} outputs a feature map`);
        net.dispose();
      });
    }
  }
});

test('classifiers: resnet18 at width 64 has torchvision ResNet-18 parameters (3x3 one-channel stem, 2 classes)', () => {
  const net = createClassifier(classifierConfig('resnet18', [28, 28]));
  // torchvision resnet18: 11,689,512 (7x7 RGB stem, 1000 classes) - 64*3*49 + 64*1*9 - (512*1000 + 1000) + (512*2 + 2).
  assert.equal(net.numParameters(true), 11_689_512 - 9408 + 576 - 513_000 + 1026);
  net.dispose();
  assert.throws(() => createClassifier(classifierConfig('nope', [28, 28])), /unknown classifier 'nope'/);
  assert.throws(() => createClassifier(classifierConfig('vit', [30, 30])), /multiple of the patch size/);
});
