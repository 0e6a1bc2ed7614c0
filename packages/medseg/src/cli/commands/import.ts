/** `medseg import <kind> <source> <dest>`: make an nnU-Net-style raw dataset from common layouts. */
import { InvalidArgumentError, type Command } from 'commander';
import { printResult } from '../output.ts';

const KINDS = ['msd-hippocampus', 'isbi2012', 'drive', 'paired'] as const;
type Kind = (typeof KINDS)[number];

export function register(program: Command): void {
  program
    .command('import')
    .description('convert a dataset layout into an nnU-Net raw dataset (dataset.json, imagesTr/, labelsTr/ ...)')
    .argument('<kind>', `one of ${KINDS.join(', ')}`, (v: string) => {
      if (!(KINDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${KINDS.join(', ')}`);
      return v as Kind;
    })
    .argument('<source>', 'source folder (for "paired": the images folder)')
    .argument('<dest>', 'dataset folder to write')
    .option('--labels <dir>', 'labels folder (kind "paired")')
    .option('--name <name>', 'dataset name in dataset.json')
    .option('--test <ids>', 'comma-separated case ids to put in imagesTs/labelsTs')
    .addHelpText(
      'after',
      `
Label values are remapped to class ids 0..K-1 (sorted distinct values) and the
mapping is stored in dataset.json. ISBI 2012: 0 = membrane, 255 = cell become 0, 1.
DRIVE: RGB fundus images become three channel files; field-of-view masks go to masksTr/ and masksTs/.`,
    )
    .action(async (kind: Kind, source: string, dest: string, o: { labels?: string; name?: string; test?: string }, cmd: Command) => {
      const imp = await import('../../data/import.ts');
      const testIds = o.test ? o.test.split(',').map((s) => s.trim()) : undefined;
      const common = { ...(o.name ? { name: o.name } : {}), ...(testIds ? { testIds } : {}) };
      let out: string;
      if (kind === 'msd-hippocampus') out = await imp.importMsdHippocampus(source, dest, common);
      else if (kind === 'isbi2012') out = await imp.importIsbi2012(source, dest, common);
      else if (kind === 'drive') out = await imp.importDrive(source, dest, common);
      else {
        if (!o.labels) throw new InvalidArgumentError('kind "paired" needs --labels <dir>');
        out = await imp.importPairedFolders(source, o.labels, dest, { name: o.name ?? 'dataset', ...(testIds ? { testIds } : {}) });
      }
      printResult(cmd, { dataset: out }, () => `wrote dataset ${out}`);
    });
}
