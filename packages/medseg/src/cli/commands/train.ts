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
import { addPlanningOptions, planningChoices } from '../planning-options.ts';

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
      'transfer learning: start from a medseg model folder or a .safetensors file (tensors matched by name and shape; the rest stay as initialised)',
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
  addPlanningOptions(cmd).action(
    async (
      dataset: string,
      o: PlanningChoices & {
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
        semi?: 'mean-teacher' | 'pseudo-label';
        unlabelled?: string;
      },
      c: Command,
    ) => {
      if (!o.init && (o.encoderLrScale !== undefined || o.initPart !== 'all' || o.initFrom !== 'medseg'))
        throw new CliUsageError('--init-from, --init-part and --encoder-lr-scale go with --init');
      if (o.unlabelled && !o.semi) throw new CliUsageError('--unlabelled goes with --semi mean-teacher|pseudo-label');
      const { readFileSync } = await import('node:fs');
      const { trainModel } = await import('../../pipeline/train-model.ts');
      const { createProgress } = await import('../../util/progress.ts');
      let split;
      if (o.split) {
        const s = JSON.parse(readFileSync(o.split, 'utf8')) as { train: string[]; validation?: string[]; val?: string[] };
        split = { train: s.train, val: s.validation ?? s.val ?? [] };
      }
      const r = await trainModel({
        dataset,
        out: o.out,
        plan: o.plan,
        ...planningChoices(o),
        folds: o.folds,
        nFolds: o.nFolds,
        split,
        resume: o.resume,
        seed: o.seed,
        faithfulness: o.faithfulness,
        ...(o.semi ? { semi: { method: o.semi, ...(o.unlabelled ? { unlabelled: { folder: o.unlabelled } } : {}) } } : {}),
        ...(o.init ? { init: { source: o.init, from: o.initFrom, part: o.initPart, encoderLrScale: o.encoderLrScale } } : {}),
        progress: createProgress(wantsJson(c) ? 'json' : 'auto'),
      });
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
