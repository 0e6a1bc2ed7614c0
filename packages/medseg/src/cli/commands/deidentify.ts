/**
 * `medseg deidentify <in> <out>`: PS3.15 Basic Application Level
 * Confidentiality Profile (io/dicom/deidentify.ts) on a DICOM file, a series
 * folder or a folder tree, with a JSON or CSV log of what was changed.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CliBadInputError, CliUsageError } from '../errors.ts';
import { log, printResult } from '../output.ts';

interface DeidentifyCliOptions {
  keepDates?: boolean;
  shiftDates?: number;
  retainPatientCharacteristics?: boolean;
  retainDeviceIdentity?: boolean;
  retainInstitutionIdentity?: boolean;
  retainUids?: boolean;
  cleanDescriptors?: boolean;
  cleanStructuredContent?: boolean;
  cleanGraphics?: boolean;
  keepPrivate: { group: number; creator: string; element: number }[];
  burnedIn: 'refuse' | 'warn';
  patientName?: string;
  patientId?: string;
  uidSecretFile?: string;
  uidMap?: string;
  log?: string;
}

function parseDays(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected a whole number of days, got '${value}'`);
  return n;
}

/** `gggg:CREATOR:ee` (hex group, private creator, hex low byte of the element), comma-separated, the option repeatable. */
function parsePrivateRules(value: string, previous: DeidentifyCliOptions['keepPrivate']): DeidentifyCliOptions['keepPrivate'] {
  const out = [...previous];
  for (const part of value.split(',')) {
    const m = /^([0-9a-fA-F]{4}):(.+):([0-9a-fA-F]{2})$/.exec(part.trim());
    const group = m ? parseInt(m[1]!, 16) : NaN;
    if (!m || !(group & 1)) throw new InvalidArgumentError(`expected gggg:CREATOR:ee with an odd group (e.g. 0019:GEMS_ACQU_01:0c), got '${part}'`);
    out.push({ group, creator: m[2]!, element: parseInt(m[3]!, 16) });
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('deidentify')
    .description('de-identify DICOM files (PS3.15 Basic Application Level Confidentiality Profile) with a log of the changes')
    .argument('<in>', 'a DICOM file, a series folder or a folder tree')
    .argument('<out>', 'output file, or output folder (the tree is written with the same relative paths)')
    .option('--keep-dates', 'Retain Longitudinal Temporal Information, Full Dates option')
    .option('--shift-dates <days>', 'Retain Longitudinal Temporal Information, Modified Dates option: shift dates by whole days (--shift-dates=-30)', parseDays)
    .option('--retain-patient-characteristics', 'Retain Patient Characteristics option (sex, age, size, weight, ...)')
    .option('--retain-device-identity', 'Retain Device Identity option (serial numbers, station names, ...)')
    .option('--retain-institution-identity', 'Retain Institution Identity option')
    .option('--retain-uids', 'Retain UIDs option (instance UIDs are kept instead of remapped)')
    .option('--clean-descriptors', 'Clean Descriptors option: descriptions are cleaned of identifying text instead of removed')
    .option('--clean-structured-content', 'Clean Structured Content option')
    .option('--clean-graphics', 'Clean Graphics option')
    .option('--keep-private <rules>', 'Retain Safe Private option: keep these private elements, gggg:CREATOR:ee[,...] (repeatable)', parsePrivateRules, [])
    .addOption(
      new Option('--burned-in <mode>', 'files with BurnedInAnnotation YES: refuse them, or warn and de-identify the header')
        .choices(['refuse', 'warn'])
        .default('refuse'),
    )
    .option('--patient-name <name>', "value for Patient's Name (default ANONYMOUS)")
    .option('--patient-id <id>', 'value for Patient ID (default a pseudonym ANON-<n> per original ID)')
    .option('--uid-secret-file <file>', 'derive replacement UIDs from the secret in this file: the same UIDs in every run with that secret')
    .option(
      '--uid-map <file.json>',
      'read the original -> replacement UID map from this file when it exists, and write it back (keep it private: it re-identifies)',
    )
    .option('--log <file>', 'the change log, .json or .csv (default: deidentify-log.json in <out>, or <out>.deidentify-log.json for a file)')
    .addHelpText(
      'after',
      `
Every attribute of PS3.15 Table E.1-1 gets its Basic Profile action (D dummy, Z empty, X remove,
K keep, C clean, U remap UID) or its option's action; private attributes are removed unless kept
with --keep-private; UIDs are remapped consistently across the whole run (and across runs with
--uid-map or --uid-secret-file). PatientIdentityRemoved, DeidentificationMethod and its code
sequence (113100 and one code per option) are added. The log lists, per file, each attribute
changed (tag, name, action, result), never its value. Files that are not DICOM are skipped and
listed; files that cannot be read, or that have burned-in annotation, are listed as failed, the
others are still written, and the command then exits with code 2.

Examples:
  medseg deidentify study/ study-anon/
  medseg deidentify ct.dcm ct-anon.dcm --keep-dates --retain-patient-characteristics
  medseg deidentify exports/ anon/ --shift-dates=-120 --uid-map uid-map.json --log anon-log.csv`,
    )
    .action(async (input: string, out: string, o: DeidentifyCliOptions, cmd: Command) => {
      if (o.keepDates && o.shiftDates !== undefined) throw new CliUsageError('--keep-dates and --shift-dates are two different options: give one');
      if (o.log && !/\.(json|csv)$/i.test(o.log)) throw new CliUsageError(`--log must end in .json or .csv: ${o.log}`);
      const { deidentifyTree, DeidentifyFailures } = await import('../../io/dicom/deidentify-tree.ts');
      const { newDeidentifyState } = await import('../../io/dicom/deidentify.ts');
      const { writeFileAtomic, writeJsonAtomic } = await import('../../util/atomic-write.ts');
      const { toCsv } = await import('../../util/csv.ts');
      const { stat } = await import('node:fs/promises');
      const { join } = await import('node:path');

      const state = newDeidentifyState();
      if (o.uidMap && existsSync(o.uidMap)) {
        let map: unknown;
        try {
          map = JSON.parse(await readFile(o.uidMap, 'utf8'));
        } catch (e) {
          throw new CliUsageError(`--uid-map ${o.uidMap} is not a JSON object of UIDs: ${(e as Error).message}`);
        }
        if (!map || typeof map !== 'object' || Array.isArray(map)) throw new CliUsageError(`--uid-map ${o.uidMap} is not a JSON object of UIDs`);
        for (const [k, v] of Object.entries(map)) if (typeof v === 'string') state.uids.set(k, v);
      }
      let uidSecret: string | undefined;
      if (o.uidSecretFile) {
        uidSecret = (
          await readFile(o.uidSecretFile, 'utf8').catch(() => {
            throw new CliUsageError(`cannot read --uid-secret-file ${o.uidSecretFile}`);
          })
        ).trim();
        if (!uidSecret) throw new CliUsageError(`--uid-secret-file ${o.uidSecretFile} is empty`);
      }
      const inputIsDir = await stat(input).then(
        (s) => s.isDirectory(),
        () => false,
      );
      const logPath = o.log ?? (inputIsDir ? join(out, 'deidentify-log.json') : `${out}.deidentify-log.json`);

      const result = await deidentifyTree(input, out, {
        state,
        ...(o.keepDates ? { dates: 'keep' as const } : o.shiftDates !== undefined ? { dates: 'shift' as const, shiftDays: o.shiftDates } : {}),
        retainPatientCharacteristics: o.retainPatientCharacteristics,
        retainDeviceIdentity: o.retainDeviceIdentity,
        retainInstitutionIdentity: o.retainInstitutionIdentity,
        retainUIDs: o.retainUids,
        cleanDescriptors: o.cleanDescriptors,
        cleanStructuredContent: o.cleanStructuredContent,
        cleanGraphics: o.cleanGraphics,
        keepPrivate: o.keepPrivate,
        burnedInAnnotation: o.burnedIn,
        ...(o.patientName !== undefined ? { patientName: o.patientName } : {}),
        ...(o.patientId !== undefined ? { patientId: o.patientId } : {}),
        ...(uidSecret !== undefined ? { uidSecret } : {}),
        onFile: (r) => {
          if (r.status === 'skipped') log(`skipped ${r.input}: ${r.reason ?? ''}`);
          else if (r.status === 'failed') log(`failed ${r.input}: ${r.reason ?? ''}`);
          for (const w of r.warnings ?? []) log(`warning: ${r.input}: ${w}`);
        },
      });

      if (/\.csv$/i.test(logPath)) {
        const rows: (string | undefined)[][] = [];
        for (const f of result.files) {
          if (!f.changes?.length) rows.push([f.input, f.output, f.status, f.reason, '', '', '', '', '', '', '']);
          for (const c of f.changes ?? []) rows.push([f.input, f.output, f.status, f.reason, c.path, c.tag, c.name, c.action, c.rule, c.before, c.after]);
        }
        await writeFileAtomic(logPath, toCsv(['input', 'output', 'status', 'reason', 'path', 'tag', 'name', 'action', 'rule', 'before', 'after'], rows));
      } else {
        await writeJsonAtomic(logPath, { profile: 'PS3.15 Annex E Basic Application Level Confidentiality Profile', ...result });
      }
      if (o.uidMap) await writeJsonAtomic(o.uidMap, Object.fromEntries(state.uids));

      const summary = {
        input,
        output: out,
        log: logPath,
        written: result.written,
        skipped: result.files.filter((f) => f.status === 'skipped').map((f) => f.input),
        failed: result.files.filter((f) => f.status === 'failed').map((f) => ({ input: f.input, code: f.code, reason: f.reason })),
      };
      if (result.written === 0 && result.failed === 0) throw new CliBadInputError(`no DICOM file found in ${input}`);
      if (result.failed > 0) throw new DeidentifyFailures(result, input);
      printResult(cmd, summary, () =>
        [`de-identified ${result.written} file(s) into ${out}; log: ${logPath}`, ...summary.skipped.map((s) => `skipped (not DICOM): ${s}`)].join('\n'),
      );
    });
}
