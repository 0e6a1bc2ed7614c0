/**
 * Output conventions shared by every command: results go to stdout (a table
 * for people, or one JSON object with --json), progress and logs to stderr so
 * `medseg ... --json | jq` always sees valid JSON.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { jsonNumberReplacer } from '../eval/metrics_rows.ts';

export function wantsJson(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals().json);
}

/** Progress and notes: stderr, never stdout. */
export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** JSON has no NaN/Infinity: they are written as "NaN", "Infinity", "-Infinity". */
export function toJson(value: unknown): string {
  return JSON.stringify(value, jsonNumberReplacer, 2);
}

/** Print a command's result: `human()` as text, or `data` as one JSON object with --json. */
export function printResult(cmd: Command, data: Record<string, unknown>, human: () => string): void {
  if (wantsJson(cmd)) process.stdout.write(`${toJson({ ok: true, ...data })}\n`);
  else process.stdout.write(`${human()}\n`);
}

/** A plain text table with right-aligned numeric columns. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => (r[j] ?? '').length)));
  const numeric = header.map((_, j) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.]|^(NaN|[+-]?Inf|—)/.test(r[j] ?? '')));
  const line = (cells: string[]) =>
    cells
      .map((c, j) => (numeric[j] ? c.padStart(widths[j]!) : c.padEnd(widths[j]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Option parser for "1,2,3" (a usage error otherwise). */
export function parseNumberList(value: string): number[] {
  const out = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (out.length === 0 || out.some((n) => !Number.isFinite(n))) throw new InvalidArgumentError('expected a comma-separated list of numbers, e.g. 1,2');
  return out;
}

/** Option parser for a whole number >= 1. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

/** Option parser for a finite number >= 0. */
export function parseNonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

/** Option parser for a share of a whole in [0, 1). */
export function parseShare(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

/** Option parser for a share of a whole in (0, 1]. */
export function parsePositiveShare(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a number in (0, 1]');
  return n;
}

/** Option parser for a finite number > 0. */
export function parsePositive(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && Number.isFinite(n))) throw new InvalidArgumentError('expected a number > 0');
  return n;
}

/** Option parser for "a,b,c". */
export function parseStringList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
