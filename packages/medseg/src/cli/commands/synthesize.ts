/**
 * `medseg synthesize <dataset> --out <dir>`: train a pix2pix GAN (mask ->
 * image) on the dataset's training pairs within a time budget and write
 * synthetic pairs, tagged synthetic in every file, with a fidelity report;
 * `medseg train --synthetic <dir> --synthetic-ratio r` mixes them in.
 */
import { Option, type Command } from 'commander';
import { parsePositive, printResult } from '../output.ts';

export function register(program: Command): void {
  program
    .command('synthesize')
    .description('GAN augmentation: train a conditional GAN (mask -> image) and write synthetic training pairs, tagged as such')
    .argument('<dataset>', 'nnU-Net / MSD raw dataset folder with labelled training cases')
    .requiredOption('--out <dir>', 'new folder for the synthetic dataset (imagesTr, labelsTr, dataset.json, manifest.json, fidelity.json)')
    .option('--plan <file>', "plan file (default: the dataset's stored plan, else a new plan)")
    .addOption(new Option('--dims <dims>', '2D or 3D GAN (plans the dataset anew at these dims)').choices(['2', '3']))
    .option('--minutes <m>', 'GAN training budget (default 10)', parsePositive)
    .option('--count <n>', 'synthetic pairs to write (default: as many as training cases)', (v: string) => Math.round(parsePositive(v)))
    .addOption(new Option('--loss <loss>', 'adversarial loss (+ L1 x 100)').choices(['lsgan', 'hinge']).default('lsgan'))
    .option('--no-fidelity', 'skip the fidelity report (classifier AUC, intensity Wasserstein-1, synthetic-only Dice)')
    .option('--seed <n>', 'random seed', (v: string) => Number(v), 12345)
    .action(
      async (
        dataset: string,
        o: { out: string; plan?: string; dims?: '2' | '3'; minutes?: number; count?: number; loss: 'lsgan' | 'hinge'; fidelity: boolean; seed: number },
        c: Command,
      ) => {
        const { synthesizePairs } = await import('../../pipeline/synthesize.ts');
        const r = await synthesizePairs({
          dataset,
          out: o.out,
          plan: o.plan,
          ...(o.dims ? { dims: o.dims === '2' ? ('2d' as const) : ('3d_fullres' as const) } : {}),
          minutes: o.minutes,
          count: o.count,
          loss: o.loss,
          seed: o.seed,
          ...(o.fidelity ? {} : { fidelity: false as const }),
        });
        printResult(c, { dir: r.dir, count: r.files.length, gan: r.gan, fidelity: r.fidelity }, () =>
          [
            `wrote ${r.files.length} SYNTHETIC pairs to ${r.dir} (GAN: ${r.gan.steps} steps, ${(r.gan.seconds / 60).toFixed(1)} min, ${r.gan.stable ? 'stable' : 'unstable: the discriminator won'})`,
            r.fidelity
              ? `  fidelity: real-vs-synthetic AUC ${r.fidelity.classifierAuc.toFixed(3)}, intensity W1 ${r.fidelity.wasserstein1.map((w) => w.toFixed(3)).join(' / ')}, synthetic-only Dice on real ${r.fidelity.syntheticOnlyDice.mean.toFixed(3)}`
              : '  fidelity: not measured',
            `  use: medseg train <dataset> --synthetic ${r.dir} --synthetic-ratio 0.25`,
          ].join('\n'),
        );
      },
    );
}
