/**
 * `medseg pretrain <dataset|folder> --out <dir> --method mim|contrastive`:
 * self-supervised pretraining of the plan's network on unlabelled images,
 * written as a folder that `medseg train --init <dir> --init-part encoder`
 * starts from.
 */
import { Option, type Command } from 'commander';
import { parsePositive, printResult } from '../output.ts';

export function register(program: Command): void {
  program
    .command('pretrain')
    .description('self-supervised pretraining on unlabelled images (masked image modelling or contrastive), for `medseg train --init`')
    .argument('<images>', 'a dataset folder (its training and test images; labels are not read) or a folder of image files')
    .requiredOption('--out <dir>', 'pretraining folder to write (weights, pretrained.json, plan.json)')
    .addOption(
      new Option('--method <method>', 'mim: masked image modelling (MAE-style for transformer encoders, inpainting for CNNs); contrastive: SimCLR')
        .choices(['mim', 'contrastive'])
        .default('mim'),
    )
    .option('--plan <file>', "the plan whose network to pretrain (required for a folder of images: the fine-tuning dataset's plan)")
    .option('--arch <name>', 'architecture, when planning the dataset anew (default: the stored plan, else unet)')
    .addOption(new Option('--dims <dims>', 'plan 2d or 3d_fullres, when planning the dataset anew').choices(['2d', '3d_fullres']))
    .option('--minutes <m>', 'time budget (default 10)', parsePositive)
    .option('--batch-size <n>', "patches per step (default: the plan's batch; contrastive at least 8, the other patches being the negatives)", (v: string) =>
      Math.round(parsePositive(v)),
    )
    .option('--seed <n>', 'random seed', (v: string) => Number(v), 12345)
    .action(
      async (
        images: string,
        o: {
          out: string;
          method: 'mim' | 'contrastive';
          plan?: string;
          arch?: string;
          dims?: '2d' | '3d_fullres';
          minutes?: number;
          batchSize?: number;
          seed: number;
        },
        c: Command,
      ) => {
        const { pretrainModel } = await import('../../pipeline/pretrain.ts');
        const r = await pretrainModel({
          images,
          out: o.out,
          method: o.method,
          plan: o.plan,
          architecture: o.arch,
          dims: o.dims,
          minutes: o.minutes,
          batchSize: o.batchSize,
          seed: o.seed,
        });
        const d = r.descriptor;
        printResult(
          c,
          { dir: r.dir, weights: r.weightsFile, kind: d.kind, steps: d.steps, minutes: d.minutes, firstLoss: d.firstLoss, lastLoss: d.lastLoss },
          () =>
            [
              `pretrained ${d.architecture} (${d.kind}) on ${d.images} images: ${d.steps} steps in ${d.minutes.toFixed(1)} min, loss ${d.firstLoss.toFixed(4)} -> ${d.lastLoss.toFixed(4)}`,
              `  folder: ${r.dir}`,
              `  fine-tune: medseg train <dataset> --plan ${r.dir}/plan.json --init ${r.dir} --init-part encoder`,
            ].join('\n'),
        );
      },
    );
}
