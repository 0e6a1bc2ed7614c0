/**
 * `medseg train <dataset> --out <model>`: take the plan (--plan, else the one
 * `medseg plan` stored for the dataset, else plan anew; planning options
 * always plan anew), preprocess, train folds, choose postprocessing, write
 * the model card.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import type { PlanningChoices } from '../../pipeline/planning-choices.ts';
import { parseNumberList, printResult, wantsJson } from '../output.ts';
import { addPlanningOptions } from '../planning-options.ts';
import { planningChoicesOf } from '../../pipeline/planning-choices.ts';
import { addDistributedOptions, distributedMode, spawnRanks, type DistributedCliOptions } from '../distributed-run.ts';

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a segmentation model (k-fold cross-validation; resumable)')
    .argument('<dataset>', 'nnU-Net / MSD raw dataset folder (`medseg import` makes one)')
    .requiredOption('--out <dir>', 'model folder to create (plan, folds, weights, logs, model card)')
    .option('--plan <file>', 'use this plan as it is (default: <dataset>/medseg/plan.json from `medseg plan`, unless planning options are given)')
    .option('--folds <list>', 'folds to train, e.g. 0 or 0,1,2,3,4, or "all"', (v: string) => (v === 'all' ? 'all' : parseNumberList(v)), [0])
    .option(
      '--n-folds <k>',
      'number of cross-validation folds',
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError('expected an integer >= 2');
        return n;
      },
      5,
    )
    .option('--split <file>', 'a JSON file {"train": [ids], "validation": [ids]} instead of k-fold')
    .option('--resume', 'continue from the last checkpoint of an interrupted run')
    .option('--seed <n>', 'random seed', (v: string) => Number(v), 12345)
    .option(
      '--no-faithfulness',
      "skip the model card's explanation check (Grad-CAM's randomisation test and deletion curve on one validation case, a few dozen predictions of it)",
    )
    .option(
      '--init <model|file>',
      'transfer learning: start from a medseg model folder, a `medseg pretrain` folder or a .safetensors file (tensors matched by name and shape; the rest stay as initialised)',
    )
    .addOption(
      new Option(
        '--init-from <naming>',
        "the weights' names: medseg, nnunet (nnU-Net v2 PlainConvUNet) or monai (MONAI DynUNet); PyTorch checkpoints converted with scripts/pth-to-safetensors.py",
      )
        .choices(['medseg', 'nnunet', 'monai'])
        .default('medseg'),
    )
    .addOption(new Option('--init-part <part>', 'copy all fitting weights or only the encoder').choices(['all', 'encoder']).default('all'))
    .option('--synthetic <dir>', 'mix synthetic pairs (a `medseg synthesize` folder) into training; validation stays real')
    .option(
      '--synthetic-ratio <r>',
      'share of training draws that are synthetic, 0..1 (with --synthetic; default 0.5; 1 trains on synthetic pairs only)',
      (v: string) => {
        const r = Number(v);
        if (!(r >= 0 && r <= 1)) throw new InvalidArgumentError('expected a number in [0, 1]');
        return r;
      },
    )
    .addOption(
      new Option(
        '--semi <method>',
        "semi-supervised training with unlabelled cases against an EMA teacher: mean-teacher (consistency with uncertainty-aware masking) or pseudo-label (the teacher's confident voxels as labels)",
      ).choices(['mean-teacher', 'pseudo-label']),
    )
    .option('--unlabelled <dir>', "with --semi: a folder of unlabelled images (default: the dataset's imagesTr images without a label file)")
    .option(
      '--encoder-lr-scale <f>',
      "the encoder's learning rate as a multiple of the rest's (with --init; 0 freezes the encoder, default 1)",
      (v: string) => {
        const f = Number(v);
        if (!(f >= 0 && Number.isFinite(f))) throw new InvalidArgumentError('expected a number >= 0');
        return f;
      },
    );
  addDistributedOptions(addPlanningOptions(cmd)).action(
    async (
      dataset: string,
      o: PlanningChoices &
        DistributedCliOptions & {
          out: string;
          plan?: string;
          folds: number[] | 'all';
          nFolds: number;
          split?: string;
          resume?: boolean;
          seed: number;
          faithfulness: boolean;
          init?: string;
          initFrom: 'medseg' | 'nnunet' | 'monai';
          initPart: 'all' | 'encoder';
          encoderLrScale?: number;
          synthetic?: string;
          syntheticRatio?: number;
          semi?: 'mean-teacher' | 'pseudo-label';
          unlabelled?: string;
        },
      c: Command,
    ) => {
      const mode = distributedMode(o);
      if (mode === 'spawn') {
        await spawnRanks(o.ranks!);
        return;
      }
      if (!o.init && (o.encoderLrScale !== undefined || o.initPart !== 'all' || o.initFrom !== 'medseg'))
        throw new CliUsageError('--init-from, --init-part and --encoder-lr-scale go with --init');
      if (!o.synthetic && o.syntheticRatio !== undefined) throw new CliUsageError('--synthetic-ratio goes with --synthetic');
      if (o.unlabelled && !o.semi) throw new CliUsageError('--unlabelled goes with --semi mean-teacher|pseudo-label');
      const { readFileSync } = await import('node:fs');
      const { trainModel } = await import('../../pipeline/train-model.ts');
      const { createProgress } = await import('../../util/progress.ts');
      let split;
      if (o.split) {
        const s = JSON.parse(readFileSync(o.split, 'utf8')) as { train: string[]; validation?: string[]; val?: string[] };
        split = { train: s.train, val: s.validation ?? s.val ?? [] };
      }
      const torch = mode === 'rank' ? await import('@medseg/torch') : null;
      const group = torch
        ? await torch.ProcessGroup.join({
            masterAddr: o.masterAddr,
            masterPort: o.masterPort!,
            rank: o.rank!,
            worldSize: o.worldSize!,
            timeoutMs: o.distTimeout * 60_000,
          })
        : null;
      const r = await trainModel({
        dataset,
        out: o.out,
        plan: o.plan,
        ...planningChoicesOf(o),
        folds: o.folds,
        nFolds: o.nFolds,
        split,
        resume: o.resume,
        seed: o.seed,
        faithfulness: o.faithfulness,
        ...(o.semi ? { semi: { method: o.semi, ...(o.unlabelled ? { unlabelled: { folder: o.unlabelled } } : {}) } } : {}),
        ...(o.init ? { init: { source: o.init, from: o.initFrom, part: o.initPart, encoderLrScale: o.encoderLrScale } } : {}),
        ...(o.synthetic ? { synthetic: { dir: o.synthetic, ratio: o.syntheticRatio ?? 0.5 } } : {}),
        progress: createProgress(wantsJson(c) ? 'json' : 'auto'),
        ...(group ? { distributed: { group, bucketMB: o.bucketMb } } : {}),
      }).finally(() => group?.destroy());
      if (group && group.rank !== 0) {
        printResult(
          c,
          { rank: group.rank, worldSize: group.worldSize, folds: r.folds.map((f) => f.fold) },
          () => `rank ${group.rank} of ${group.worldSize}: trained fold(s) ${r.folds.map((f) => f.fold).join(', ')} (rank 0 wrote ${r.modelDir})`,
        );
        return;
      }
      printResult(c, { modelDir: r.modelDir, folds: r.folds, postprocessing: r.postprocessing }, () =>
        [
          `model: ${r.modelDir}`,
          ...r.folds.map(
            (f) =>
              `  fold ${f.fold}: validation Dice ${f.valDice.map((d) => d.toFixed(4)).join(' / ')} (best epoch ${f.result.bestEpoch + 1}, ${f.result.minutes.toFixed(1)} min, stopped by ${f.result.stoppedBy})`,
          ),
          `  keep-largest-component for classes: ${r.postprocessing.length ? r.postprocessing.join(', ') : 'none (cross-validation showed no gain)'}`,
          `  model card: ${r.modelDir}/model-card.md`,
        ].join('\n'),
      );
    },
  );
}
