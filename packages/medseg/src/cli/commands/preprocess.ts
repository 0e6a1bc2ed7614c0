/** `medseg preprocess <dataset>`: preprocess the training cases for the dataset's plan into the cache `medseg train` reads. */
import type { Command } from 'commander';
import { log, printResult } from '../output.ts';

export function register(program: Command): void {
  program
    .command('preprocess')
    .description('crop, normalise and resample the training cases for the plan, into the cache `medseg train` reuses')
    .argument('<dataset>', 'nnU-Net / MSD raw dataset folder with a plan (`medseg plan` writes one)')
    .option('--plan <file>', 'plan file (default: <dataset>/medseg/plan.json)')
    .option('--out <dir>', 'cache folder (default: <dataset>/medseg/preprocessed/<plan hash>, where `medseg train` looks)')
    .action(async (dataset: string, o: { plan?: string; out?: string }, cmd: Command) => {
      const { preprocessForPlan } = await import('../../pipeline/preprocess-dataset.ts');
      const t0 = Date.now();
      let shown = -1;
      const r = await preprocessForPlan({
        dataset,
        plan: o.plan,
        out: o.out,
        onProgress: (done, total) => {
          const pct = Math.floor((100 * done) / total);
          if (pct >= shown + 10 || done === total) {
            shown = pct;
            log(`preprocessed ${done}/${total} cases`);
          }
        },
      });
      printResult(
        cmd,
        { dir: r.dir, cases: r.ids.length, computed: r.computed },
        () => `preprocessed ${r.computed} of ${r.ids.length} cases (the rest were current) into ${r.dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    });
}
