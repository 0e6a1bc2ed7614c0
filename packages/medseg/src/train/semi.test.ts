/**
 * Semi-supervised training against hand computations: the EMA update
 * (float32 arithmetic done here with Math.fround), the schedules, predictive
 * entropy, the uncertainty mask and the masked softmax MSE, pseudo-label
 * masking and its cross-entropy on tiny tensors; then a few Mean Teacher
 * and pseudo-label steps of a small unet on real hippocampus crops, where
 * the teacher changes only by the EMA of the student; a run stopped after an
 * epoch and resumed (the teacher restored from the checkpoint) ends where an
 * uninterrupted one does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '@medseg/torch';
import { createNetwork } from '../models/registry.ts';
import type { SegmentationNetwork } from '../models/config.ts';
import { hippocampusCrop, smallConfig } from '../testing/models.ts';
import { fixtureConfig, syntheticData, TinySegNet } from '../testing/trainer-fixture.ts';
import { maskedCrossEntropy, maskedSoftmaxMse, predictiveEntropy, pseudoLabels } from './semi-losses.ts';
import { emaDecayAt, entropyThreshold, sigmoidRampUp, unlabelledWeight } from './semi-schedules.ts';
import { SEMI_DEFAULTS, semiSupervisedStep, teacherTargets } from './semi-step.ts';
import { EmaTeacher } from './semi-teacher.ts';
import { makeOptimizer } from './step.ts';
import { train, type TrainingData } from './trainer.ts';

const values = (t: torch.Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);
const snapshot = (net: { stateDict(): Map<string, torch.Tensor> }) => new Map([...net.stateDict()].map(([k, t]) => [k, values(t)]));
const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test('schedules: sigmoid ramp-up, EMA decay, unlabelled weight, entropy threshold', () => {
  assert.equal(sigmoidRampUp(0, 0.4), Math.exp(-5));
  assert.equal(sigmoidRampUp(0.2, 0.4), Math.exp(-5 * 0.25));
  assert.equal(sigmoidRampUp(0.4, 0.4), 1);
  assert.equal(sigmoidRampUp(0.9, 0.4), 1);
  assert.equal(sigmoidRampUp(-1, 0.4), Math.exp(-5));
  assert.equal(sigmoidRampUp(0, 0), 1);
  assert.deepEqual(
    [0, 1, 9, 99, 1000].map((s) => emaDecayAt(s, 0.99)),
    [0, 0.5, 0.9, 0.99, 0.99],
  );
  assert.ok(close(unlabelledWeight({ weight: 0.1, rampUp: 0.4 }, 0.3), 0.1 * Math.exp(-5 * 0.25 * 0.25), 1e-15));
  assert.ok(close(entropyThreshold(2, 0, 0.4), (0.75 + 0.25 * Math.exp(-5)) * Math.LN2, 1e-15));
  assert.equal(entropyThreshold(3, 1, 0.4), Math.log(3));
});

test('EMA update: teacher = d * teacher + (1 - d) * student, exactly as float32 arithmetic; integer buffers copied', () => {
  torch.manualSeed(7);
  const student = createNetwork(smallConfig('unet', 2, { norm: 'batch' }));
  const teacher = new EmaTeacher(createNetwork(smallConfig('unet', 2, { norm: 'batch' })), student);
  assert.ok(teacher.net.parameters().every((p) => !p.requiresGrad));
  assert.deepEqual(snapshot(teacher.net), snapshot(student), 'the teacher starts as a copy');
  // Move the student, then average.
  torch.noGrad(() => {
    for (const [, t] of student.stateDict()) if (t.dtype === 'float32') t.add_(torch.randn(t.shape).mul(0.1));
    for (const [k, t] of student.stateDict()) if (k.endsWith('num_batches_tracked')) t.fill_(5);
  });
  const before = snapshot(teacher.net);
  const s = snapshot(student);
  const d = 0.9;
  teacher.update(student, d);
  const f = Math.fround;
  let checked = 0;
  for (const [k, t] of teacher.net.stateDict()) {
    const got = values(t.float());
    if (t.dtype === 'float32') {
      const want = before.get(k)!.map((v, i) => f(f(v * f(d)) + f(s.get(k)![i]! * f(1 - d))));
      assert.deepEqual(got, want, k);
      checked++;
    } else assert.deepEqual(got, s.get(k), `${k} is copied`);
  }
  assert.ok(checked > 10);
  assert.throws(() => teacher.update(student, 1.5), RangeError);
  student.dispose();
  teacher.dispose();
});

test('predictive entropy, the uncertainty mask and the masked softmax MSE on a tiny tensor', () => {
  torch.tidy(() => {
    // Two classes, two voxels ([N, K, 1, 2]: class 0's voxels, then class 1's). Student softmax: voxel 0 (1/4, 3/4), voxel 1 (4/5, 1/5).
    const student = torch.tensor([0, Math.log(4), Math.log(3), 0], [1, 2, 1, 2]);
    const teacher = torch.tensor([0.5, 0.9, 0.5, 0.1], [1, 2, 1, 2]);
    const h = (p: number[]) => -p.reduce((a, v) => a + v * Math.log(v + 1e-6), 0);
    const ent = values(predictiveEntropy(teacher));
    assert.ok(close(ent[0]!, h([0.5, 0.5])) && close(ent[1]!, h([0.9, 0.1])), `${ent}`);
    // At the start of the ramp the threshold is ~3/4 ln 2 = 0.52: voxel 0 (entropy ln 2) is too uncertain, voxel 1 (0.325) counts.
    const { mask } = teacherTargetsOf(teacher);
    assert.deepEqual(values(mask), [0, 1]);
    const ps0 = [1 / 4, 3 / 4]; // softmax(0, ln 3) for voxel 0
    const ps1 = [4 / 5, 1 / 5]; // softmax(ln 4, 0) for voxel 1
    const want1 = ((ps1[0]! - 0.9) ** 2 + (ps1[1]! - 0.1) ** 2) / 2;
    assert.ok(close(maskedSoftmaxMse(student, teacher, mask).item(), want1));
    const wantAll = ((ps0[0]! - 0.5) ** 2 + (ps0[1]! - 0.5) ** 2 + (ps1[0]! - 0.9) ** 2 + (ps1[1]! - 0.1) ** 2) / 4;
    assert.ok(close(maskedSoftmaxMse(student, teacher, null).item(), wantAll));
    assert.equal(maskedSoftmaxMse(student, teacher, torch.zeros([1, 1, 2])).item(), 0);
  });
});

/** The entropy mask as the Mean Teacher step builds it, at progress 0 with two classes. */
function teacherTargetsOf(probs: torch.Tensor): { mask: torch.Tensor } {
  const ent = predictiveEntropy(probs);
  return { mask: ent.lt(entropyThreshold(2, 0, 0.4)).to('float32') };
}

test('pseudo labels: argmax where the top probability exceeds the threshold, cross-entropy over those voxels only', () => {
  torch.tidy(() => {
    // Three classes, three voxels: confident class 2, unsure, confident class 0.
    const teacher = torch.tensor([0.02, 0.4, 0.95, 0.03, 0.35, 0.03, 0.95, 0.25, 0.02], [1, 3, 1, 3]);
    const { labels, mask } = pseudoLabels(teacher, 0.9);
    assert.deepEqual(Array.from(labels.toTypedArray() as BigInt64Array, Number), [2, 0, 0]);
    assert.deepEqual(values(mask), [1, 0, 1]);
    const logits = [
      [1, 2, 3],
      [0, 0, 0],
      [2, -1, 0.5],
    ]; // per voxel, classes 0..2
    const student = torch.tensor(
      [logits[0]![0]!, logits[1]![0]!, logits[2]![0]!, logits[0]![1]!, logits[1]![1]!, logits[2]![1]!, logits[0]![2]!, logits[1]![2]!, logits[2]![2]!],
      [1, 3, 1, 3],
    );
    const nll = (l: number[], k: number) => Math.log(l.reduce((a, v) => a + Math.exp(v), 0)) - l[k]!;
    const want = (nll(logits[0]!, 2) + nll(logits[2]!, 0)) / 2;
    assert.ok(close(maskedCrossEntropy(student, labels, mask).item(), want));
    assert.equal(maskedCrossEntropy(student, labels, torch.zeros([1, 1, 3])).item(), 0);
  });
});

test('a few Mean Teacher and pseudo-label steps on real crops: the student trains, the teacher moves only by the EMA', async () => {
  const lab = await hippocampusCrop([16, 16, 16]);
  const unl = await hippocampusCrop([16, 16, 16], 'hippocampus_003');
  for (const method of ['mean-teacher', 'pseudo-label'] as const) {
    torch.manualSeed(11);
    const cfg = smallConfig('unet', 3, { numClasses: 3 });
    const net = createNetwork(cfg) as SegmentationNetwork;
    const teacher = new EmaTeacher(createNetwork(cfg) as SegmentationNetwork, net);
    const opt = makeOptimizer(net, { optimizer: 'sgd', lr: 0.05, weightDecay: 0, momentum: 0.9 });
    const semi = { ...SEMI_DEFAULTS[method], noisePasses: 2 };
    net.train();
    for (let step = 0; step < 3; step++) {
      const t0 = snapshot(teacher.net);
      const r = semiSupervisedStep(net, opt, teacher, { image: lab.image, label: lab.label, unlabelled: unl.image }, { step, progress: step / 3 }, semi, {
        loss: { name: 'dice_ce', batchDice: false },
        gradClip: 12,
        numClasses: 3,
      });
      assert.ok(Number.isFinite(r.loss) && Number.isFinite(r.unlabelled) && r.counted >= 0 && r.counted <= 1, JSON.stringify(r));
      assert.ok(close(r.loss, r.supervised + r.weight * r.unlabelled, 1e-5), JSON.stringify(r));
      assert.equal(r.decay, emaDecayAt(step, semi.emaDecay));
      const s = snapshot(net);
      for (const [k, v] of snapshot(teacher.net)) {
        const f = Math.fround;
        const want = t0.get(k)!.map((x, i) => f(f(x * f(r.decay)) + f(s.get(k)![i]! * f(1 - r.decay))));
        assert.deepEqual(v, want, `${method} step ${step}: ${k}`);
      }
    }
    // Step 0 has decay 0: the teacher became the student after the first update; later it lags behind.
    const w = 'decoder.0.convs.0.conv.weight';
    assert.notDeepEqual(snapshot(teacher.net).get(w), snapshot(net).get(w));
    const t = teacherTargets(teacher.net, unl.image, semi, 3, 1);
    assert.deepEqual(t.probs.shape, [1, 3, 16, 16, 16]);
    assert.ok(!t.probs.requiresGrad);
    opt.dispose();
    net.dispose();
    teacher.dispose();
  }
});

test('a semi-supervised run stopped after one epoch and resumed ends with the student and teacher of an uninterrupted run', async () => {
  const cfg = { ...fixtureConfig, epochs: 2, iterationsPerEpoch: 3 };
  const semi = { ...SEMI_DEFAULTS['mean-teacher'], noisePasses: 2 };
  const labelled = syntheticData(11);
  const other = syntheticData(29);
  const data: TrainingData = {
    validation: labelled.validation,
    async nextBatch(epoch, it) {
      const u = await other.nextBatch(epoch, it);
      u.label.dispose();
      return { ...(await labelled.nextBatch(epoch, it)), unlabelled: u.image };
    },
  };
  const runOnce = async (dir: string, o: { stopAfterEpochs?: number; resume?: boolean }) => {
    torch.manualSeed(o.resume ? 99 : 7); // a resumed run's fresh weights are replaced by the checkpoint's
    const net = new TinySegNet();
    const teacher = new EmaTeacher(new TinySegNet(), net);
    await train(net, cfg, data, dir, {
      ...o,
      progress: { start() {}, update() {}, stop() {} },
      step: (opt, b, at) => semiSupervisedStep(net, opt, teacher, { image: b.image, label: b.label, unlabelled: b.unlabelled! }, at, semi, cfg).loss,
      extraState: { tensors: () => teacher.tensors('teacher.'), restore: (m) => teacher.restore(m, 'teacher.') },
    });
    const out = { student: snapshot(net), teacher: snapshot(teacher.net) };
    net.dispose();
    teacher.dispose();
    return out;
  };
  const straight = await runOnce(mkdtempSync(join(tmpdir(), 'medseg-semi-a-')), {});
  const dir = mkdtempSync(join(tmpdir(), 'medseg-semi-b-'));
  await runOnce(dir, { stopAfterEpochs: 1 });
  const resumed = await runOnce(dir, { resume: true });
  assert.deepEqual(resumed.student, straight.student);
  assert.deepEqual(resumed.teacher, straight.teacher);
  assert.notDeepEqual(straight.teacher, straight.student);
});
