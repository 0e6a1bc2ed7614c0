/**
 * De-identifies one DICOM file, or every DICOM file of a folder tree into an
 * output folder with the same relative paths, sharing one UID map and one
 * pseudonym table across the run (a study, its series and the SEG that
 * references them stay consistent). Each output is written atomically.
 * Walking a folder, files that are not DICOM are skipped and listed, files
 * that fail (truncated, corrupt, burned-in annotation refused) are listed
 * with their error and the others are still written.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { MedsegIoError } from '../errors.ts';
import { fsError } from '../limits.ts';
import { deidentifyFile, newDeidentifyState, type DeidChange, type DeidentifyOptions } from './deidentify.ts';
import { listFiles } from './files.ts';
import { looksLikeDicom } from './parse.ts';

export interface DeidFileResult {
  /** Path of the input file (relative to the input folder for a tree). */
  input: string;
  output?: string;
  status: 'written' | 'skipped' | 'failed';
  /** Why a file was skipped or failed. */
  reason?: string;
  code?: string;
  changes?: DeidChange[];
  warnings?: string[];
}

export interface DeidentifyTreeResult {
  files: DeidFileResult[];
  written: number;
  skipped: number;
  failed: number;
}

/** Some files could not be de-identified (the others were written): bad input, exit 2. */
export class DeidentifyFailures extends MedsegIoError {
  constructor(
    readonly result: DeidentifyTreeResult,
    where: string,
  ) {
    const failed = result.files.filter((f) => f.status === 'failed');
    super(
      'BAD_DATA',
      `${failed.length} of ${result.files.length} file(s) could not be de-identified (${result.written} written):\n${failed.map((f) => `  - ${f.input}: ${f.reason ?? ''}`).join('\n')}`,
      where,
    );
  }
}

function inside(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && r !== '..');
}

/**
 * De-identifies `input` (a file or a folder tree) into `output` (a file, or a
 * folder; for a file input an existing folder receives the file under its own
 * name). The options' `state` is created when absent and shared by every file.
 */
export async function deidentifyTree(
  input: string,
  output: string,
  opts: DeidentifyOptions & { onFile?: (r: DeidFileResult) => void } = {},
): Promise<DeidentifyTreeResult> {
  const st = await stat(input).catch((e: unknown) => {
    throw fsError(e, input);
  });
  const state = opts.state ?? newDeidentifyState();
  const { onFile, ...deid } = opts;
  const result: DeidentifyTreeResult = { files: [], written: 0, skipped: 0, failed: 0 };
  const jobs: { path: string; rel: string; out: string }[] = [];
  if (st.isDirectory()) {
    if (inside(resolve(output), resolve(input))) throw new MedsegIoError('BAD_DATA', 'the output folder must not lie inside the input folder', output);
    const { files } = await listFiles(input);
    for (const f of files) jobs.push({ path: f, rel: relative(input, f), out: join(output, relative(input, f)) });
  } else {
    const outIsDir = await stat(output).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (resolve(output) === resolve(input)) throw new MedsegIoError('BAD_DATA', 'the output must not overwrite the input', output);
    jobs.push({ path: input, rel: input, out: outIsDir ? join(output, basename(input)) : output });
  }
  const fromFolder = st.isDirectory();
  for (const job of jobs) {
    let r: DeidFileResult;
    try {
      const bytes = await readFile(job.path).catch((e: unknown) => {
        throw fsError(e, job.path);
      });
      if (fromFolder && !looksLikeDicom(bytes)) {
        r = { input: job.rel, status: 'skipped', reason: 'not a DICOM file' };
      } else {
        const { bytes: out, report } = deidentifyFile(bytes, { ...deid, state }, job.rel);
        await mkdir(dirname(job.out), { recursive: true });
        await writeFileAtomic(job.out, out);
        r = { input: job.rel, output: job.out, status: 'written', changes: report.changes, warnings: report.warnings };
      }
    } catch (e) {
      if (!(e instanceof MedsegIoError)) throw e;
      const reason = e.path && e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path.length + 2) : e.message;
      r = { input: job.rel, status: 'failed', code: e.code, reason };
    }
    result.files.push(r);
    if (r.status === 'written') result.written++;
    else if (r.status === 'skipped') result.skipped++;
    else result.failed++;
    onFile?.(r);
  }
  return result;
}
