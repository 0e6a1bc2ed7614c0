/** `medseg register-train <dataset> --out <dir>`: the registration network that `medseg register --model` uses. */
import { Option, type Command } from 'commander';
import { CliUsageError } from '../errors.ts';
import { parseNonNegative, parsePositive, parsePositiveInt, printResult, wantsJson } from '../output.ts';

interface RegisterTrainCliOptions {
  out: string;
  atlas?: string;
  pairs?: number;
  minutes: number;
  supervised?: boolean;
  diffeomorphic?: boolean;
  similarity: 'lncc' | 'mi' | 'ncc';
  smoothness?: number;
  seed: number;
  checkpointSeconds: number;
  resume?: boolean;
}

export function register(program: Command): void {
  program
    .command('register-train')
    .description('train the registration network (affine first, then a U-Net predicting the deformable field) on pairs of a dataset')
    .argument('<dataset>', 'dataset folder (dataset.json, imagesTr/, labelsTr/): one channel')
    .requiredOption('--out <dir>', 'model folder (registration.json, weights.safetensors, training.json), for `register --model`')
    .option('--atlas <id>', 'register every other training case to this one (atlas-based); default: random pairs of cases')
    .option('--pairs <n>', 'number of pairs (default: every subject with --atlas, else up to 100 random pairs)', parsePositiveInt)
    .option('--minutes <m>', 'time budget', parsePositive, 5)
    .option('--supervised', 'also train on the Dice of the warped labels (needs the label files)')
    .option('--diffeomorphic', 'predict a velocity field integrated by scaling and squaring (7 steps)')
    .addOption(
      new Option('--similarity <name>', 'similarity loss: local NCC (window 9), mutual information or global NCC')
        .choices(['lncc', 'mi', 'ncc'])
        .default('lncc'),
    )
    .option('--smoothness <weight>', 'weight of the diffusion penalty (default 1)', parseNonNegative)
    .option('--seed <n>', 'random seed (pairs and their order)', parsePositiveInt, 1)
    .option('--checkpoint-seconds <s>', 'rewrite the model folder this often while training', parsePositive, 60)
    .option('--resume', 'go on from the checkpoint in --out with the rest of its budget')
    .action(async (dataset: string, o: RegisterTrainCliOptions, cmd: Command) => {
      if (o.resume && (o.atlas !== undefined || o.pairs !== undefined))
        throw new CliUsageError('--resume keeps the settings the run started with: leave out --atlas and --pairs');
      const { datasetPairs, trainRegistrationFiles } = await import('../../registration/train-files.ts');
      const { createProgress } = await import('../../util/progress.ts');
      const r = await trainRegistrationFiles(datasetPairs(dataset, { atlas: o.atlas, pairs: o.pairs, seed: o.seed }), {
        out: o.out,
        seconds: o.minutes * 60,
        supervised: o.supervised,
        settings: {
          similarity: o.similarity,
          diffeomorphic: Boolean(o.diffeomorphic),
          ...(o.smoothness !== undefined ? { smoothness: o.smoothness } : {}),
        },
        seed: o.seed,
        checkpointSeconds: o.checkpointSeconds,
        resume: o.resume,
        progress: createProgress(wantsJson(cmd) ? 'json' : 'auto'),
      });
      printResult(cmd, { ...r }, () => `${r.dir}: ${r.pairs} pairs, ${r.steps} steps in ${r.seconds.toFixed(0)} s, loss ${r.loss.toFixed(4)}`);
    });
}
