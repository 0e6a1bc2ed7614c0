import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '@medseg/torch';
import { diceScores } from '../infer/predict-case.ts';
import { FOLD_FILES } from '../plan/model-folder.ts';
import type { EpochLog } from './trainer.ts';

const { checkpoint: CHECKPOINT, final: FINAL_WEIGHTS, log: LOG } = FOLD_FILES;

const fixture = fileURLToPath(new URL('../testing/trainer-fixture.ts', import.meta.url));

function run(outDir: string, resume: boolean): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture, outDir, resume ? '1' : '0', '0'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function weights(dir: string): Map<string, number[]> {
  const { tensors } = torch.loadSafetensors(join(dir, FINAL_WEIGHTS));
  const out = new Map([...tensors].map(([k, t]) => [k, t.toArray()]));
  for (const t of tensors.values()) t.dispose();
  return out;
}

test('Dice per class from label maps (NaN when a class is absent from both)', () => {
  const ref = new Uint8Array([0, 1, 1, 2, 2, 0]);
  const pred = new Uint8Array([0, 1, 0, 2, 2, 2]);
  const d = diceScores(pred, ref, 4);
  assert.ok(Math.abs(d[0]! - 2 / 3) < 1e-12);
  assert.ok(Math.abs(d[1]! - 4 / 5) < 1e-12);
  assert.ok(Number.isNaN(d[2]!));
});

test('a run SIGKILLed mid-training resumes to exactly the weights of an uninterrupted run', { timeout: 240_000 }, async () => {
  const straight = mkdtempSync(join(tmpdir(), 'medseg-train-a-'));
  run(straight, false);
  const log: EpochLog[] = readFileSync(join(straight, LOG), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(log.length, 4);
  assert.ok(log.at(-1)!.valDiceMean > 0.5, `the tiny net should learn the spheres (val Dice ${log.at(-1)!.valDiceMean})`);

  // Slow the batches down so the kill lands inside epoch 2 or 3, after a checkpoint exists.
  const killed = mkdtempSync(join(tmpdir(), 'medseg-train-b-'));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, killed, '0', '150'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  const t0 = Date.now();
  while (!existsSync(join(killed, CHECKPOINT)) && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(existsSync(join(killed, CHECKPOINT)), 'no checkpoint was written');
  await new Promise((r) => setTimeout(r, 400));
  child.kill('SIGKILL');
  await exited;
  assert.ok(!existsSync(join(killed, FINAL_WEIGHTS)), 'the kill came too late to test resuming');

  run(killed, true);
  const a = weights(straight);
  const b = weights(killed);
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [k, v] of a) assert.deepEqual(b.get(k), v, `weights differ in ${k}`);
  const logB: EpochLog[] = readFileSync(join(killed, LOG), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    logB.map((e) => e.epoch),
    [0, 1, 2, 3],
  );
  assert.deepEqual(
    logB.map((e) => e.trainLoss),
    log.map((e) => e.trainLoss),
  );
});

test('under a time budget the LR schedule follows the elapsed share of the budget, whatever the iterations done', async () => {
  const { scheduleStep, epochsWithinBudget } = await import('./trainer.ts');
  const { fixtureConfig } = await import('../testing/trainer-fixture.ts');
  const cfg = { ...fixtureConfig, epochs: 10, iterationsPerEpoch: 100, timeBudgetMinutes: 10 };
  // No budget: the schedule counts iterations.
  assert.equal(scheduleStep({ ...cfg, timeBudgetMinutes: 0 }, 123, 5000), 123);
  // Slower or faster than planned, the schedule is the elapsed share of the budget (in millionths), so the run
  // uses the whole budget rather than stopping early or idling at the minimum LR.
  assert.equal(scheduleStep(cfg, 200, 300), 500_000);
  assert.equal(scheduleStep(cfg, 700, 300), 500_000);
  // The budget is spent: the end of the schedule, not past it.
  assert.equal(scheduleStep(cfg, 400, 900), 1_000_000);
  // The expected epoch count shown in the progress label.
  assert.equal(epochsWithinBudget(cfg, 1, 150, 150), 4); // 450 s left at 150 s an epoch
  assert.equal(epochsWithinBudget(cfg, 2, 250, 100), 6); // 350 s left: 3.5 epochs, the last one cut short
  assert.equal(epochsWithinBudget(cfg, 1, 30, 30), 20); // fast machine: more epochs than planned fit
  assert.equal(epochsWithinBudget(cfg, 1, 2000, 2000), 1); // over budget already
  assert.equal(epochsWithinBudget({ ...cfg, timeBudgetMinutes: 0 }, 1, 5000, 5000), 10);
});

test('stochastic weight averaging: the LR anneals by cosine to the held share of its peak where averaging starts, then holds', async () => {
  const { makeSchedule } = await import('./trainer.ts');
  const { fixtureConfig } = await import('../testing/trainer-fixture.ts');
  const p = torch.zeros([1]).requiresGrad_(true);
  const lrAt = (cfg: Parameters<typeof makeSchedule>[1], step: number): number => {
    const opt = new torch.optim.SGD([p], { lr: cfg.lr });
    const schedule = makeSchedule(opt, cfg)!;
    schedule.loadStateDict({ stepCount: step });
    return opt.groups[0]!.lr;
  };
  // 10 epochs of 100 iterations, 1 warm-up epoch, peak 0.01; averaging from 60 % at 0.2 of the peak.
  const cfg = { ...fixtureConfig, epochs: 10, iterationsPerEpoch: 100, warmupEpochs: 1, lr: 0.01, schedule: 'poly' as const };
  const swa = { ...cfg, weightAveraging: { from: 0.6, lr: 0.2 } };
  assert.ok(Math.abs(lrAt(swa, 50) - (0.01 * 51) / 101) < 1e-12); // warm-up as before
  assert.ok(Math.abs(lrAt(swa, 100) - 0.01) < 1e-12); // the peak
  // Half-way from the warm-up's end (100) to the hold (600): the cosine's midpoint between peak and held rate.
  assert.ok(Math.abs(lrAt(swa, 350) - (0.002 + 0.5 * 0.008)) < 1e-12);
  for (const step of [600, 750, 999]) assert.ok(Math.abs(lrAt(swa, step) - 0.002) < 1e-12, `step ${step}: ${lrAt(swa, step)}`);
  // Under a time budget the hold starts at the same share of the budget.
  const budgeted = { ...swa, timeBudgetMinutes: 10 };
  assert.ok(Math.abs(lrAt(budgeted, 350_000) - 0.006) < 1e-12);
  assert.ok(Math.abs(lrAt(budgeted, 600_000) - 0.002) < 1e-12);
  // Plain averaging (no lr) keeps the plan's schedule: poly decays to 0 at the end.
  assert.ok(lrAt({ ...cfg, weightAveraging: { from: 0.6 } }, 999) < 1e-4);
});

test('a time-budgeted run stops when the budget is spent, mid-epoch if need be, with the LR at the end of its decay', async () => {
  const { train } = await import('./trainer.ts');
  const { TinySegNet, syntheticData, fixtureConfig } = await import('../testing/trainer-fixture.ts');
  torch.manualSeed(3);
  const data = syntheticData(5);
  const slowed = {
    ...data,
    async nextBatch(e: number, i: number) {
      await new Promise((r) => setTimeout(r, 40));
      return data.nextBatch(e, i);
    },
  };
  // Planned for 1 epoch, which takes far less than the budget: the run goes on until the budget is spent.
  const cfg = { ...fixtureConfig, epochs: 1, iterationsPerEpoch: 3, schedule: 'cosine' as const, timeBudgetMinutes: 0.05 };
  const out = mkdtempSync(join(tmpdir(), 'medseg-train-budget-'));
  const r = await train(new TinySegNet(), cfg, slowed, out, { progress: { start() {}, update() {}, stop() {} } });
  const log: EpochLog[] = readFileSync(join(out, LOG), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(r.stoppedBy, 'time-budget');
  assert.ok(r.epochsRun > cfg.epochs && r.epochsRun === log.length, `${r.epochsRun} epochs`);
  assert.ok(r.minutes >= cfg.timeBudgetMinutes);
  // The clock, not the epoch count, drove the decay.
  assert.ok(log.at(-1)!.lr < 0.05 * cfg.lr, `final lr ${log.at(-1)!.lr}`);
  assert.ok(log.every((e) => e.iterations > 0 && e.iterations <= cfg.iterationsPerEpoch));
  assert.ok(existsSync(join(out, FINAL_WEIGHTS)));
});

test("the trainer applies FedProx's proximal term and DP-SGD steps, and counts its steps", { timeout: 60_000 }, async () => {
  const { TinySegNet, syntheticData, fixtureConfig } = await import('../testing/trainer-fixture.ts');
  const { ProximalTerm } = await import('./proximal.ts');
  const { train } = await import('./trainer.ts');
  const quiet = { start() {}, update() {}, stop() {} };
  const cfg = { ...fixtureConfig, epochs: 1, iterationsPerEpoch: 3, momentum: 1e-9, weightDecay: 0 };
  const flat = (net: InstanceType<typeof TinySegNet>) => net.parameters().flatMap((p) => Array.from(p.toFloat32Array()));
  const distance = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));
  const runWith = async (o: { mu?: number; dp?: { clipNorm: number; noiseMultiplier: number } }) => {
    torch.manualSeed(7);
    const net = new TinySegNet();
    const start = flat(net);
    const proximal = o.mu ? new ProximalTerm(net.parameters(), o.mu) : undefined;
    const dir = mkdtempSync(join(tmpdir(), 'medseg-train-fl-'));
    const r = await train(net, cfg, { ...syntheticData(11), validation: [] }, dir, { progress: quiet, proximal, dp: o.dp });
    proximal?.dispose();
    const moved = distance(flat(net), start);
    net.dispose();
    return { moved, steps: r.steps };
  };
  const plain = await runWith({});
  const prox = await runWith({ mu: 10 });
  assert.equal(plain.steps, 3);
  assert.ok(prox.moved < plain.moved * 0.8, `proximal term: moved ${prox.moved} vs ${plain.moved} without`);
  // Every DP step's gradient has norm <= C (no noise), so SGD (momentum ~0) moves at most lr * C per step.
  const C = 1e-3;
  const dp = await runWith({ dp: { clipNorm: C, noiseMultiplier: 0 } });
  assert.equal(dp.steps, 3);
  assert.ok(dp.moved > 0 && dp.moved <= 3 * cfg.lr * C * (1 + 1e-4), `DP-SGD moved ${dp.moved}, bound ${3 * cfg.lr * C}`);
  assert.ok(plain.moved > 10 * dp.moved);
});

test('weight averaging: the epochs after the share join the mean, saved and validated; paused and resumed, the same mean', { timeout: 60_000 }, async () => {
  const { TinySegNet, syntheticData, fixtureConfig } = await import('../testing/trainer-fixture.ts');
  const { train } = await import('./trainer.ts');
  const quiet = { start() {}, update() {}, stop() {} };
  // 4 epochs, averaging after half of them: the 3rd and 4th epochs' weights.
  const cfg = { ...fixtureConfig, iterationsPerEpoch: 3, weightAveraging: { from: 0.5 } };
  const read = (dir: string, file: string) => {
    const { tensors } = torch.loadSafetensors(join(dir, file));
    const out = [...tensors.keys()].sort().flatMap((k) => Array.from(tensors.get(k)!.toFloat32Array()));
    for (const t of tensors.values()) t.dispose();
    return out;
  };
  torch.manualSeed(7);
  const straightNet = new TinySegNet();
  const straight = mkdtempSync(join(tmpdir(), 'medseg-train-avg-a-'));
  const r = await train(straightNet, cfg, syntheticData(11), straight, { progress: quiet });
  assert.equal(r.averaged?.epochs, 2);
  assert.ok(Number.isFinite(r.averaged!.valDice));
  // The network keeps its final weights.
  assert.deepEqual(
    [...straightNet.stateDict()].sort(([a], [b]) => (a < b ? -1 : 1)).flatMap(([, t]) => Array.from(t.toFloat32Array())),
    read(straight, FINAL_WEIGHTS),
  );
  straightNet.dispose();

  torch.manualSeed(7);
  const paused = mkdtempSync(join(tmpdir(), 'medseg-train-avg-b-'));
  const first = new TinySegNet();
  await train(first, cfg, syntheticData(11), paused, { progress: quiet, stopAfterEpochs: 3 });
  first.dispose();
  const third = read(paused, FINAL_WEIGHTS);
  const second = new TinySegNet();
  const resumed = await train(second, cfg, syntheticData(11), paused, { progress: quiet, resume: true });
  second.dispose();
  const fourth = read(paused, FINAL_WEIGHTS);
  assert.equal(resumed.averaged?.epochs, 2);
  const averaged = read(paused, FOLD_FILES.averaged);
  averaged.forEach((v, i) => assert.ok(Math.abs(v - (third[i]! + fourth[i]!) / 2) < 1e-6, `weight ${i}: ${v}`));
  assert.deepEqual(averaged, read(straight, FOLD_FILES.averaged));
  assert.equal(resumed.averaged!.valDice, r.averaged!.valDice);
  // Without the plan field there is no average.
  torch.manualSeed(7);
  const none = mkdtempSync(join(tmpdir(), 'medseg-train-avg-c-'));
  const plainNet = new TinySegNet();
  const plain = await train(plainNet, { ...cfg, weightAveraging: undefined }, syntheticData(11), none, { progress: quiet });
  plainNet.dispose();
  assert.equal(plain.averaged, undefined);
  assert.ok(!existsSync(join(none, FOLD_FILES.averaged)));
});
